"""Loops: the producer never runs ahead, detached runs are bounded, feedback carries state."""

from __future__ import annotations

from orchestrator.scheduler import Dispatch, JobChanged
from tests.scheduler.scheduler_harness import Driver, briefs, dispatched, of_type, plan_of

PACED = """
    name: paced
    nodes:
      - {id: ticks, type: Range, config: {stop: 3}}
      - {id: a, type: Sleep, config: {seconds: 0}}
      - {id: b, type: Sleep, config: {seconds: 0}}
      - {id: c, type: Sleep, config: {seconds: 0}}
      - {id: show, type: Preview}
    edges:
      - {from: ticks.value, to: a.value}
      - {from: ticks.value, to: b.value}
      - {from: b.value, to: c.value}
      - {from: ticks.value, to: show.value}
"""


def test_the_first_produce_follows_the_main_stage() -> None:
    driver = Driver(plan_of(PACED))

    assert briefs(driver.start()) == [
        ("job", "running"),
        ("loop", "main", "running"),
        ("loop", "ticks", "running"),
        ("produce", "j:ticks:0:ticks", 1, None),
        ("loop", "main", "completed"),
    ]


def test_the_producer_is_asked_for_the_next_item_only_after_every_blocking_run_finished() -> None:
    driver = Driver(plan_of(PACED))
    driver.start()

    assert briefs(driver.succeed("j:ticks:0:ticks", {"value": 0}, cursor=1)) == [
        ("run", "j:ticks:0:ticks", "succeeded"),
        ("dispatch", "j:ticks:0:a", 1, {"value": 0}),
        ("dispatch", "j:ticks:0:b", 1, {"value": 0}),
        ("dispatch", "j:ticks:0:show", 1, {"value": 0}),
    ]
    assert briefs(driver.succeed("j:ticks:0:b", {"value": 0})) == [
        ("run", "j:ticks:0:b", "succeeded"),
        ("dispatch", "j:ticks:0:c", 1, {"value": 0}),
    ]
    assert briefs(driver.succeed("j:ticks:0:a", {"value": 0})) == [
        ("run", "j:ticks:0:a", "succeeded"),
    ]
    # c is the last blocking run; the sink `show` is still in flight.
    assert briefs(driver.succeed("j:ticks:0:c", {"value": 0})) == [
        ("run", "j:ticks:0:c", "succeeded"),
        ("loop", "ticks", "running"),
        ("produce", "j:ticks:1:ticks", 1, 1),
    ]
    assert "j:ticks:0:show" in driver.inflight


def test_the_loop_ends_only_after_its_detached_runs_finished() -> None:
    driver = Driver(plan_of(PACED))
    driver.start()
    for value in range(3):
        driver.succeed(f"j:ticks:{value}:ticks", {"value": value}, cursor=value + 1)
        for node in "abc":
            driver.succeed(f"j:ticks:{value}:{node}", {"value": value})

    assert briefs(driver.succeed("j:ticks:3:ticks", exhausted=True)) == []
    assert briefs(driver.succeed("j:ticks:0:show")) == [("run", "j:ticks:0:show", "succeeded")]
    assert briefs(driver.succeed("j:ticks:1:show")) == [("run", "j:ticks:1:show", "succeeded")]
    assert briefs(driver.succeed("j:ticks:2:show")) == [
        ("run", "j:ticks:2:show", "succeeded"),
        ("loop", "ticks", "completed"),
        ("job", "completed"),
    ]


BOUNDED = """
    name: bounded
    nodes:
      - {id: ticks, type: Range, config: {stop: 5}}
      - {id: d1, type: Sleep, config: {seconds: 0}, blocking: false}
      - {id: d2, type: Sleep, config: {seconds: 0}, blocking: false}
      - {id: d3, type: Sleep, config: {seconds: 0}, blocking: false}
    edges:
      - {from: ticks.value, to: d1.value}
      - {from: ticks.value, to: d2.value}
      - {from: ticks.value, to: d3.value}
    loops:
      ticks: {max_inflight_nonblocking: 2}
"""


def test_past_max_inflight_nonblocking_a_detached_run_and_the_next_produce_wait() -> None:
    driver = Driver(plan_of(BOUNDED))
    driver.start()

    produced = driver.succeed("j:ticks:0:ticks", {"value": 0}, cursor=1)

    # d3 is the third detached run with a limit of two: no dispatch, no produce.
    assert dispatched(produced) == ["j:ticks:0:d1", "j:ticks:0:d2"]
    assert briefs(driver.succeed("j:ticks:0:d1", {"value": 0})) == [
        ("run", "j:ticks:0:d1", "succeeded"),
        ("dispatch", "j:ticks:0:d3", 1, {"value": 0}),
    ]
    assert briefs(driver.succeed("j:ticks:0:d2", {"value": 0})) == [
        ("run", "j:ticks:0:d2", "succeeded"),
        ("produce", "j:ticks:1:ticks", 1, 1),
    ]


def test_detached_runs_never_exceed_the_limit_over_a_whole_loop() -> None:
    driver = Driver(plan_of(BOUNDED))
    driver.start()
    peak = 0
    while driver.ended() is None:
        # Answer the producer last, so detached runs pile up as far as allowed.
        order = sorted(driver.inflight, key=lambda run_id: run_id.endswith(":ticks"))
        driver.answer(order[0])
        detached = [r for r in driver.inflight if not r.endswith(":ticks")]
        peak = max(peak, len(detached))

    assert peak == 2
    assert driver.ended() == JobChanged("completed", {})
    assert len(of_type(driver.all_commands(), Dispatch)) == 6 + 5 * 3


DETACHED_ONLY = """
    name: detached
    nodes:
      - {id: ticks, type: Range, config: {stop: 3}}
      - {id: side, type: Sleep, config: {seconds: 0}, blocking: false}
    edges:
      - {from: ticks.value, to: side.value}
"""


def test_detached_runs_do_not_hold_the_next_produce() -> None:
    driver = Driver(plan_of(DETACHED_ONLY))
    driver.start()

    assert briefs(driver.succeed("j:ticks:0:ticks", {"value": 0}, cursor=1)) == [
        ("run", "j:ticks:0:ticks", "succeeded"),
        ("dispatch", "j:ticks:0:side", 1, {"value": 0}),
        ("loop", "ticks", "running"),
        ("produce", "j:ticks:1:ticks", 1, 1),
    ]


FEEDBACK = """
    name: running-sum
    nodes:
      - {id: ticks, type: Range, config: {start: 1, stop: 4}}
      - {id: acc, type: Math, config: {op: add}}
      - {id: out, type: Output, config: {name: sums}}
    edges:
      - {from: ticks.value, to: acc.a}
      - {from: acc.result, to: acc.b, feedback: true, initial: 100}
      - {from: acc.result, to: out.value}
"""


def test_iteration_zero_gets_initial_and_each_next_iteration_the_previous_value() -> None:
    driver = Driver(plan_of(FEEDBACK))

    ended = driver.run()

    acc = [d.inputs for d in of_type(driver.all_commands(), Dispatch) if d.node.id == "acc"]
    assert acc == [{"a": 1, "b": 100}, {"a": 2, "b": 101}, {"a": 3, "b": 103}]
    assert ended == JobChanged("completed", {"sums": [101, 103, 106]})


def test_a_detached_feedback_source_makes_the_next_iteration_target_wait_for_it() -> None:
    plan = plan_of(
        FEEDBACK.replace(
            "type: Math, config: {op: add}}", "type: Math, config: {op: add}, blocking: false}"
        )
    )
    driver = Driver(plan)
    driver.start()

    first = driver.succeed("j:ticks:0:ticks", {"value": 1}, cursor=2)
    assert briefs(first)[1:] == [
        ("dispatch", "j:ticks:0:acc", 1, {"a": 1, "b": 100}),
        ("loop", "ticks", "running"),
        ("produce", "j:ticks:1:ticks", 1, 2),
    ]
    # Iteration 1 has its item, but acc of iteration 0 has not finished yet; the
    # producer goes on, as nothing in the iteration blocks.
    second = driver.succeed("j:ticks:1:ticks", {"value": 2}, cursor=3)
    assert dispatched(second) == ["j:ticks:2:ticks"]
    assert briefs(driver.succeed("j:ticks:0:acc", {"result": 101}))[:3] == [
        ("run", "j:ticks:0:acc", "succeeded"),
        ("run", "j:ticks:0:out", "succeeded"),
        ("dispatch", "j:ticks:1:acc", 1, {"a": 2, "b": 101}),
    ]


def test_max_iterations_ends_the_loop_without_asking_the_producer_again() -> None:
    plan = plan_of(PACED.replace("stop: 3", "stop: 100"), loops={"ticks": {"max_iterations": 2}})
    driver = Driver(plan)

    ended = driver.run()

    produces = [d.run_id for d in of_type(driver.all_commands(), Dispatch) if d.kind == "produce"]
    assert produces == ["j:ticks:0:ticks", "j:ticks:1:ticks"]
    assert ended.status == "completed"


def test_two_loops_run_side_by_side() -> None:
    plan = plan_of(
        """
        name: two
        nodes:
          - {id: left, type: Items, config: {items: [a, b]}}
          - {id: right, type: Range, config: {stop: 2}}
          - {id: l, type: Format, config: {template: "L{value}"}}
          - {id: r, type: Math, config: {op: mul}}
          - {id: lout, type: Output, config: {name: left}}
          - {id: rout, type: Output, config: {name: right}}
        edges:
          - {from: left.item, to: l.value}
          - {from: right.value, to: r.a}
          - {from: right.value, to: r.b}
          - {from: l.text, to: lout.value}
          - {from: r.result, to: rout.value}
        """
    )
    driver = Driver(plan)

    assert dispatched(driver.start()) == ["j:left:0:left", "j:right:0:right"]
    assert driver.run() == JobChanged("completed", {"left": ["La", "Lb"], "right": [0, 1]})
