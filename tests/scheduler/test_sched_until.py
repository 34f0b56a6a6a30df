"""Loops that end themselves (DESIGN 3.15), and feedback read per iteration (3.4),
driven step by step through the pure scheduler."""

from __future__ import annotations

from typing import Any

from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import Dispatch, Scheduler
from tests.scheduler.scheduler_harness import (
    Driver,
    briefs,
    dispatched,
    loop_statuses,
    norm,
    of_type,
    plan_of,
)

UNTIL = """
    name: until
    nodes:
      - {id: limit, type: Constant, config: {value: 3}}
      - {id: ticks, type: Count}
      - {id: done, type: Compare, config: {op: ge}}
      - {id: out, type: Output, config: {name: values}}
    edges:
      - {from: ticks.value, to: done.a}
      - {from: limit.value, to: done.b}
      - {from: ticks.value, to: out.value}
"""


def test_a_loop_completes_after_the_first_iteration_whose_until_output_is_truthy() -> None:
    driver = Driver(plan_of(UNTIL, {"ticks": {"until": "done.result"}}))

    ended = driver.run()

    assert ended.status == "completed"
    assert ended.outputs == {"values": [0, 1, 2, 3]}
    produces = [c for c in driver.all_commands() if isinstance(c, Dispatch) and c.kind == "produce"]
    assert [c.run_id for c in produces] == [f"j:ticks:{i}:ticks" for i in range(4)]
    assert loop_statuses(driver.all_commands(), "ticks")[-1] == "completed"


def test_the_producer_is_not_asked_again_once_until_is_truthy() -> None:
    driver = Driver(plan_of(UNTIL, {"ticks": {"until": "done.result"}}))
    driver.start()
    driver.answer("j:main:0:limit")
    driver.succeed("j:ticks:0:ticks", {"value": 7}, cursor=8)

    last = driver.succeed("j:ticks:0:done", {"result": True})

    assert dispatched(last) == []
    assert ("loop", "ticks", "completed") in briefs(last)
    assert ("job", "completed") in briefs(last)


def test_max_iterations_is_the_generation_limit_of_an_unbounded_producer() -> None:
    driver = Driver(plan_of(UNTIL, {"ticks": {"until": "done.result", "max_iterations": 2}}))

    ended = driver.run()

    assert ended.status == "completed"
    assert ended.outputs == {"values": [0, 1]}


def test_an_until_run_that_failed_gives_no_value_and_the_loop_goes_on() -> None:
    failing: dict[str, Any] = {}

    def done(d: Dispatch) -> RunResult | dict[str, Any]:
        if d.inputs["a"] == 1:
            failing["seen"] = True
            return RunResult(d.run_id, d.attempt, "failed", error=RunError("NodeError", "x"))
        return {"result": d.inputs["a"] >= 3}

    plan = plan_of(UNTIL, {"ticks": {"until": "done.result", "on_error": "continue"}})
    driver = Driver(plan, behaviour={"done": done})

    ended = driver.run()

    assert failing and ended.status == "completed"
    assert ended.outputs == {"values": [0, 2, 3]}  # a failed iteration leaves no entry


def test_a_falsy_json_value_does_not_end_the_loop_and_a_truthy_one_does() -> None:
    values = iter([0, "", [], None, {}, "settled"])

    def done(d: Dispatch) -> dict[str, Any]:
        return {"result": next(values)}

    driver = Driver(plan_of(UNTIL, {"ticks": {"until": "done.result"}}), behaviour={"done": done})

    assert driver.run().outputs == {"values": [0, 1, 2, 3, 4, 5]}


def test_replaying_the_events_of_a_loop_that_ended_itself_makes_the_same_decisions() -> None:
    plan = plan_of(UNTIL, {"ticks": {"until": "done.result"}})
    driver = Driver(plan)
    driver.run()

    replayed = Scheduler("j", plan)
    steps = [replayed.handle(event, now) for event, now in driver.log]

    assert [[norm(c) for c in s] for s in steps] == [[norm(c) for c in s] for s in driver.steps]
    assert replayed.state.loops["ticks"].until_met


def test_a_feedback_target_downstream_of_its_source_reads_the_previous_iteration() -> None:
    plan = plan_of(
        """
        name: previous
        nodes:
          - {id: ticks, type: Count, config: {start: 1}}
          - {id: now, type: Math, config: {op: mul}}
          - {id: before, type: Math, config: {op: add}}
          - {id: out, type: Output, config: {name: pairs}}
        edges:
          - {from: ticks.value, to: now.a}
          - {from: ticks.value, to: now.b}
          - {from: now.result, to: before.a}
          - {from: now.result, to: before.b, feedback: true, initial: 0}
          - {from: before.result, to: out.value}
        """,
        {"ticks": {"max_iterations": 4}},
    )
    driver = Driver(plan)

    ended = driver.run()

    # this iteration's square plus the previous one's: 1+0, 4+1, 9+4, 16+9
    assert ended.outputs == {"pairs": [1, 5, 13, 25]}
    sent = [c.inputs for c in of_type(driver.all_commands(), Dispatch) if c.node.id == "before"]
    assert sent == [{"a": 1, "b": 0}, {"a": 4, "b": 1}, {"a": 9, "b": 4}, {"a": 16, "b": 9}]


def test_a_failed_feedback_source_passes_on_the_value_its_iteration_received() -> None:
    plan = plan_of(
        """
        name: carry
        nodes:
          - {id: ticks, type: Count, config: {start: 1}}
          - {id: shaky, type: Flaky, config: {fail_on: [2]}}
          - {id: acc, type: Math, config: {op: add}}
        edges:
          - {from: ticks.value, to: shaky.value}
          - {from: ticks.value, to: acc.a}
          - {from: shaky.value, to: acc.b, feedback: true, initial: 0}
        """,
        {"ticks": {"max_iterations": 4, "on_error": "continue"}},
    )
    driver = Driver(plan)

    driver.run()

    sent = [c.inputs for c in of_type(driver.all_commands(), Dispatch) if c.node.id == "acc"]
    # shaky gave 1, failed on 2 (so iteration 2 reads 1 again), then gave 3
    assert sent == [{"a": 1, "b": 0}, {"a": 2, "b": 1}, {"a": 3, "b": 1}, {"a": 4, "b": 3}]
