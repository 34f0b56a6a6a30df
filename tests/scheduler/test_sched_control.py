"""Operators pause, resume, stop loops and cancel jobs; stale results change nothing."""

from __future__ import annotations

import pytest

from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import (
    CancelJob,
    Dispatch,
    JobChanged,
    LoopChanged,
    LoopControl,
    Revoke,
    RunStarted,
)
from orchestrator.states import DesiredLoopState
from tests.scheduler.scheduler_harness import (
    Driver,
    briefs,
    dispatched,
    job_statuses,
    loop_statuses,
    of_type,
    plan_of,
)

PAUSED, RUNNING, STOPPED = (
    DesiredLoopState.PAUSED,
    DesiredLoopState.RUNNING,
    DesiredLoopState.STOPPED,
)

ITEMS = """
    name: items
    nodes:
      - {id: words, type: Items, config: {items: [a, b, c, d]}}
      - {id: upper, type: Format, config: {template: "<{value}>"}}
      - {id: twice, type: Format, config: {template: "{value}{value}"}}
      - {id: out, type: Output, config: {name: words}}
    edges:
      - {from: words.item, to: upper.value}
      - {from: upper.text, to: twice.value}
      - {from: twice.text, to: out.value}
"""


def _in_iteration_one(driver: Driver) -> None:
    driver.start()
    for run_id in ["j:words:0:words", "j:words:0:upper", "j:words:0:twice", "j:words:1:words"]:
        driver.answer(run_id)


def test_pause_mid_iteration_lets_the_iteration_finish_then_produces_nothing() -> None:
    driver = Driver(plan_of(ITEMS))
    _in_iteration_one(driver)

    asked = driver.send(LoopControl("words", PAUSED))

    assert of_type(asked, LoopChanged) == [LoopChanged("words", "running", "paused", 1, 0, 2)]
    assert dispatched(driver.answer("j:words:1:upper")) == ["j:words:1:twice"]
    finished = driver.answer("j:words:1:twice")
    assert briefs(finished) == [
        ("run", "j:words:1:twice", "succeeded"),
        ("run", "j:words:1:out", "succeeded"),
        ("loop", "words", "running"),
        ("loop", "words", "paused"),
    ]
    assert driver.inflight == {}
    assert driver.scheduler.next_deadline() is None


def test_resume_continues_with_the_next_item_none_lost_none_repeated() -> None:
    driver = Driver(plan_of(ITEMS))
    _in_iteration_one(driver)
    driver.send(LoopControl("words", PAUSED))
    driver.answer("j:words:1:upper")
    driver.answer("j:words:1:twice")

    resumed = driver.send(LoopControl("words", RUNNING))

    assert briefs(resumed) == [
        ("loop", "words", "running"),
        ("produce", "j:words:2:words", 1, 2),
    ]
    ended = driver.run()
    assert ended == JobChanged("completed", {"words": ["<a><a>", "<b><b>", "<c><c>", "<d><d>"]})
    produced = [d.cursor for d in of_type(driver.all_commands(), Dispatch) if d.kind == "produce"]
    assert produced == [None, 1, 2, 3, 4]


def test_pause_between_iterations_and_resume_before_any_iteration_ends() -> None:
    driver = Driver(plan_of(ITEMS))
    _in_iteration_one(driver)
    driver.send(LoopControl("words", PAUSED))

    assert of_type(driver.send(LoopControl("words", RUNNING)), Dispatch) == []
    driver.answer("j:words:1:upper")
    assert dispatched(driver.answer("j:words:1:twice")) == ["j:words:2:words"]


def test_stop_finishes_the_in_flight_iteration_and_ends_the_loop_stopped() -> None:
    driver = Driver(plan_of(ITEMS))
    _in_iteration_one(driver)

    driver.send(LoopControl("words", STOPPED))
    driver.answer("j:words:1:upper")
    last = driver.answer("j:words:1:twice")

    assert loop_statuses(last) == ["running", "stopped"]
    assert dispatched(last) == []
    assert last[-1] == JobChanged("completed", {"words": ["<a><a>", "<b><b>"]})


def test_a_paused_loop_can_be_stopped() -> None:
    driver = Driver(plan_of(ITEMS))
    _in_iteration_one(driver)
    driver.send(LoopControl("words", PAUSED))
    driver.answer("j:words:1:upper")
    driver.answer("j:words:1:twice")

    stopped = driver.send(LoopControl("words", STOPPED))

    assert loop_statuses(stopped) == ["stopped"]  # recorded once
    assert job_statuses(stopped) == ["completed"]


def test_control_of_an_unknown_loop_names_the_loops_that_exist() -> None:
    driver = Driver(plan_of(ITEMS))
    driver.start()

    with pytest.raises(KeyError, match="no loop 'nope'; loops: main, words"):
        driver.send(LoopControl("nope", PAUSED))


def test_the_main_stage_cannot_be_paused() -> None:
    driver = Driver(plan_of(ITEMS))
    driver.start()

    assert driver.send(LoopControl("main", PAUSED)) == []


def test_control_of_an_ended_loop_changes_nothing() -> None:
    driver = Driver(plan_of(ITEMS))
    driver.run()

    assert driver.send(LoopControl("words", PAUSED)) == []


CANCELLABLE = """
    name: cancellable
    nodes:
      - {id: ticks, type: Range, config: {stop: 10}}
      - {id: a, type: Sleep, config: {seconds: 1}}
      - {id: b, type: Sleep, config: {seconds: 1}, retry: {attempts: 3, backoff_s: 5}}
      - {id: side, type: Preview}
      - {id: other, type: Items, config: {items: [x]}}
      - {id: o, type: Sleep, config: {seconds: 1}}
    edges:
      - {from: ticks.value, to: a.value}
      - {from: ticks.value, to: b.value}
      - {from: ticks.value, to: side.value}
      - {from: other.item, to: o.value}
"""


def test_cancel_revokes_every_run_in_flight_and_ends_every_loop_cancelled() -> None:
    driver = Driver(plan_of(CANCELLABLE))
    driver.start()
    driver.answer("j:ticks:0:ticks")
    driver.answer("j:other:0:other")
    driver.fail("j:ticks:0:b")  # waiting for its retry: nothing to revoke

    cancelled = driver.send(CancelJob("operator said so"))

    assert briefs(cancelled) == [
        ("revoke", "j:ticks:0:a", 1),
        ("revoke", "j:ticks:0:side", 1),
        ("revoke", "j:other:0:o", 1),
        ("run", "j:ticks:0:a", "cancelled"),
        ("run", "j:ticks:0:b", "cancelled"),
        ("run", "j:ticks:0:side", "cancelled"),
        ("loop", "ticks", "cancelled"),
        ("run", "j:other:0:o", "cancelled"),
        ("loop", "other", "cancelled"),
        ("job", "cancelled"),
    ]
    assert cancelled[-1] == JobChanged("cancelled", {}, "operator said so")
    assert driver.scheduler.next_deadline() is None


def test_results_arriving_after_cancel_are_ignored() -> None:
    driver = Driver(plan_of(CANCELLABLE))
    driver.start()
    driver.answer("j:ticks:0:ticks")
    driver.send(CancelJob())

    assert driver.send(RunResult("j:ticks:0:a", 1, "succeeded", {"value": 0})) == []
    assert driver.send(RunResult("j:ticks:0:side", 1, "failed", error=RunError("E", "x"))) == []
    assert driver.tick(100.0) == []
    assert driver.send(CancelJob()) == []


def test_cancel_during_the_main_stage_cancels_loops_that_never_started() -> None:
    plan = plan_of(
        """
        name: early
        nodes:
          - {id: c, type: Constant, config: {value: 1}}
          - {id: ticks, type: Range, config: {stop: 3}}
        """
    )
    driver = Driver(plan)
    driver.start()

    assert briefs(driver.send(CancelJob())) == [
        ("revoke", "j:main:0:c", 1),
        ("run", "j:main:0:c", "cancelled"),
        ("loop", "main", "cancelled"),
        ("loop", "ticks", "cancelled"),
        ("job", "cancelled"),
    ]


def test_the_same_result_twice_counts_once() -> None:
    driver = Driver(plan_of(ITEMS))
    driver.start()
    produced = RunResult("j:words:0:words", 1, "succeeded", {"item": "a"}, cursor=1)

    first = driver.send(produced)

    assert dispatched(first) == ["j:words:0:upper"]
    assert driver.send(produced) == []
    done = RunResult("j:words:0:upper", 1, "succeeded", {"text": "<a>"})
    assert dispatched(driver.send(done)) == ["j:words:0:twice"]
    assert driver.send(done) == []


def test_a_duplicate_failure_while_waiting_for_a_retry_counts_once() -> None:
    plan = plan_of(
        """
        name: dup
        nodes:
          - {id: s, type: Sleep, config: {seconds: 0}, retry: {attempts: 2, backoff_s: 1}}
        """
    )
    driver = Driver(plan)
    driver.start()
    failure = RunResult("j:main:0:s", 1, "failed", error=RunError("E", "once"))

    assert briefs(driver.send(failure)) == [("run", "j:main:0:s", "retrying")]
    assert driver.send(failure) == []
    assert dispatched(driver.tick(1.0)) == ["j:main:0:s"]
    assert driver.health()["s"]["failed"] == 1


def test_a_result_of_an_older_attempt_changes_nothing() -> None:
    plan = plan_of(
        """
        name: older
        nodes:
          - {id: s, type: Sleep, config: {seconds: 0}, retry: {attempts: 3}}
        """
    )
    driver = Driver(plan)
    driver.start()
    driver.fail("j:main:0:s")
    driver.tick(0.0)

    assert driver.send(RunResult("j:main:0:s", 1, "succeeded", {"value": 1})) == []
    assert driver.send(RunResult("j:main:0:s", 1, "failed", error=RunError("E", "late"))) == []
    assert job_statuses(driver.succeed("j:main:0:s", {"value": 2})) == ["completed"]


def test_a_result_for_an_unknown_run_changes_nothing() -> None:
    driver = Driver(plan_of(ITEMS))
    driver.start()

    assert driver.send(RunResult("j:words:7:words", 1, "succeeded", {"item": "z"})) == []
    assert driver.send(RunStarted("j:words:7:words", 1)) == []
    assert driver.send(RunStarted("j:words:0:words", 1, "worker-1")) == []


def test_every_dispatch_is_revoked_at_most_once() -> None:
    driver = Driver(plan_of(CANCELLABLE))
    driver.start()
    driver.answer("j:ticks:0:ticks")
    cancelled = driver.send(CancelJob())

    revoked = [r.run_id for r in of_type(cancelled, Revoke)]
    assert sorted(revoked) == sorted(set(revoked))
