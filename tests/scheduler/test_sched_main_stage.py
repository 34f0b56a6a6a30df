"""The main stage is dataflow: a node runs as soon as its own inputs are ready."""

from __future__ import annotations

from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import (
    CancelJob,
    Dispatch,
    JobChanged,
    LoopChanged,
    RunChanged,
    Start,
)
from tests.scheduler.scheduler_harness import Driver, brief, briefs, dispatched, plan_of

DIAMOND = """
    name: diamond
    nodes:
      - {id: a, type: Constant, config: {value: 2}}
      - {id: b, type: Constant, config: {value: 5}}
      - {id: p, type: Math, config: {op: mul}}
      - {id: q, type: Sleep, config: {seconds: 1}}
      - {id: r, type: Sleep, config: {seconds: 1}}
      - {id: total, type: Math, config: {op: add}}
      - {id: out, type: Output, config: {name: total}}
    edges:
      - {from: a.value, to: p.a}
      - {from: a.value, to: p.b}
      - {from: b.value, to: q.value}
      - {from: p.result, to: r.value}
      - {from: r.value, to: total.a}
      - {from: q.value, to: total.b}
      - {from: total.result, to: out.value}
"""


def test_independent_nodes_are_dispatched_together_in_the_first_step() -> None:
    plan = plan_of(DIAMOND)
    driver = Driver(plan)

    commands = driver.start()

    assert commands == [
        JobChanged("running", {}),
        LoopChanged("main", "running", "running", 0, 0),
        Dispatch(
            "j:main:0:a", plan.nodes["a"], "main", 0, 1, {}, "run", None, False, None, "j", path="a"
        ),
        Dispatch(
            "j:main:0:b", plan.nodes["b"], "main", 0, 1, {}, "run", None, False, None, "j", path="b"
        ),
    ]


def test_a_node_is_dispatched_as_soon_as_its_own_inputs_finished_not_per_level() -> None:
    driver = Driver(plan_of(DIAMOND))
    driver.start()

    # b (level 0) is still running, yet p (level 1) starts as soon as a finished.
    assert briefs(driver.succeed("j:main:0:a", {"value": 2})) == [
        ("run", "j:main:0:a", "succeeded"),
        ("dispatch", "j:main:0:p", 1, {"a": 2, "b": 2}),
    ]
    # r (level 2) starts while b and q (levels 0 and 1) are still running.
    assert briefs(driver.succeed("j:main:0:p", {"result": 4})) == [
        ("run", "j:main:0:p", "succeeded"),
        ("dispatch", "j:main:0:r", 1, {"value": 4}),
    ]
    assert briefs(driver.succeed("j:main:0:b", {"value": 5})) == [
        ("run", "j:main:0:b", "succeeded"),
        ("dispatch", "j:main:0:q", 1, {"value": 5}),
    ]


def test_a_node_with_two_inputs_waits_for_the_last_one() -> None:
    driver = Driver(plan_of(DIAMOND))
    driver.start()
    driver.succeed("j:main:0:a", {"value": 2})
    driver.succeed("j:main:0:b", {"value": 5})
    driver.succeed("j:main:0:p", {"result": 4})

    assert dispatched(driver.succeed("j:main:0:r", {"value": 4})) == []
    last = driver.succeed("j:main:0:q", {"value": 5})

    assert briefs(last) == [
        ("run", "j:main:0:q", "succeeded"),
        ("dispatch", "j:main:0:total", 1, {"a": 4, "b": 5}),
    ]


def test_the_job_completes_with_the_main_stage_output_as_one_value() -> None:
    driver = Driver(plan_of(DIAMOND))
    driver.start()
    for run_id, outputs in [
        ("j:main:0:a", {"value": 2}),
        ("j:main:0:b", {"value": 5}),
        ("j:main:0:p", {"result": 4}),
        ("j:main:0:q", {"value": 5}),
        ("j:main:0:r", {"value": 4}),
    ]:
        driver.succeed(run_id, outputs)

    last = driver.succeed("j:main:0:total", {"result": 9})

    assert briefs(last) == [
        ("run", "j:main:0:total", "succeeded"),
        ("run", "j:main:0:out", "succeeded"),
        ("loop", "main", "completed"),
        ("job", "completed"),
    ]
    assert last[-1] == JobChanged("completed", {"total": 9})
    assert driver.inflight == {}


def test_input_and_output_nodes_are_resolved_without_a_dispatch() -> None:
    plan = plan_of(
        """
        name: io
        nodes:
          - {id: x, type: Input, config: {name: x}}
          - {id: y, type: Input, config: {name: y, default: 10}}
          - {id: add, type: Math, config: {op: add}}
          - {id: out, type: Output, config: {name: sum}}
        edges:
          - {from: x.value, to: add.a}
          - {from: y.value, to: add.b}
          - {from: add.result, to: out.value}
        """
    )
    driver = Driver(plan, inputs={"x": 3})

    first = driver.start()

    assert briefs(first)[2:] == [
        ("run", "j:main:0:x", "succeeded"),
        ("run", "j:main:0:y", "succeeded"),
        ("dispatch", "j:main:0:add", 1, {"a": 3, "b": 10}),
    ]
    assert [c.outputs for c in first if isinstance(c, RunChanged)] == [{"value": 3}, {"value": 10}]
    assert driver.succeed("j:main:0:add", {"result": 13})[-1] == JobChanged(
        "completed", {"sum": 13}
    )


def test_a_main_stage_failure_skips_downstream_fails_the_job_and_never_starts_the_loops() -> None:
    plan = plan_of(
        """
        name: broken
        nodes:
          - {id: a, type: Constant, config: {value: 1}}
          - {id: b, type: Sleep, config: {seconds: 0}}
          - {id: c, type: Sleep, config: {seconds: 0}}
          - {id: ticks, type: Range, config: {stop: 3}}
          - {id: use, type: Math, config: {op: add}}
        edges:
          - {from: a.value, to: b.value}
          - {from: b.value, to: c.value}
          - {from: ticks.value, to: use.a}
          - {from: c.value, to: use.b}
        """
    )
    driver = Driver(plan)
    driver.start()
    driver.succeed("j:main:0:a", {"value": 1})

    commands = driver.fail("j:main:0:b", "NodeError: no", retryable=False)

    assert briefs(commands) == [
        ("run", "j:main:0:b", "failed"),
        ("run", "j:main:0:c", "skipped"),
        ("loop", "ticks", "cancelled"),
        ("loop", "main", "failed"),
        ("job", "failed"),
    ]
    assert commands[-1] == JobChanged("failed", {}, "node 'b' failed in main stage: NodeError: no")


def test_start_is_applied_once() -> None:
    driver = Driver(plan_of(DIAMOND))
    driver.start()

    assert driver.send(Start()) == []


def test_a_finished_job_ignores_further_events() -> None:
    driver = Driver(plan_of(DIAMOND))
    ended = driver.run()
    assert ended.status == "completed"

    assert driver.send(Start()) == []
    assert driver.send(RunResult("j:main:0:a", 1, "succeeded", {"value": 2})) == []
    assert driver.send(RunResult("j:main:0:a", 2, "failed", error=RunError("E", "late"))) == []
    assert driver.send(CancelJob()) == []
    assert driver.tick(1e9) == []
    assert brief(ended) == ("job", "completed")


DETACHED_MAIN = """
    name: detached-main
    nodes:
      - {id: a, type: Constant, config: {value: 1}}
      - {id: side, type: Sleep, config: {seconds: 0}, blocking: false}
      - {id: ticks, type: Range, config: {stop: 1}}
"""


def test_a_detached_main_stage_run_failing_first_fails_the_job() -> None:
    driver = Driver(plan_of(DETACHED_MAIN))
    driver.start()
    driver.fail("j:main:0:side", "E: side", retryable=False)

    last = driver.succeed("j:main:0:a", {"value": 1})

    assert briefs(last) == [
        ("run", "j:main:0:a", "succeeded"),
        ("loop", "ticks", "cancelled"),
        ("loop", "main", "failed"),
        ("job", "failed"),
    ]


def test_a_detached_main_stage_run_failing_last_fails_the_job_too() -> None:
    driver = Driver(plan_of(DETACHED_MAIN))
    driver.start()
    started = driver.succeed("j:main:0:a", {"value": 1})
    assert dispatched(started) == ["j:ticks:0:ticks"]  # the loops need not wait for it
    driver.succeed("j:ticks:0:ticks", {"value": 0}, cursor=1)
    driver.succeed("j:ticks:1:ticks", exhausted=True)

    last = driver.fail("j:main:0:side", "E: side", retryable=False)

    assert briefs(last) == [
        ("run", "j:main:0:side", "failed"),
        ("loop", "main", "failed"),
        ("job", "failed"),
    ]
    assert last[-1] == JobChanged("failed", {}, "node 'side' failed in main stage: E: side")
