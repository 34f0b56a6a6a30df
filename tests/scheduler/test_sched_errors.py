"""Failures: retries wait their backoff, timeouts revoke, ``on_error`` decides the loop."""

from __future__ import annotations

import pytest

from orchestrator.model import RetryPolicy
from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import (
    Dispatch,
    JobChanged,
    LoopChanged,
    LoopControl,
    RunChanged,
    attempts_left,
    retry_delay,
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
    statuses,
)

RETRIED = """
    name: retried
    nodes:
      - {id: a, type: Constant, config: {value: 1}}
      - id: work
        type: Sleep
        config: {seconds: 0}
        retry: {attempts: 3, backoff_s: 1, multiplier: 2, max_backoff_s: 1.5}
      - {id: after, type: Sleep, config: {seconds: 0}}
    edges:
      - {from: a.value, to: work.value}
      - {from: work.value, to: after.value}
"""


def _at_work(driver: Driver) -> None:
    driver.start()
    driver.succeed("j:main:0:a", {"value": 1})


@pytest.mark.parametrize(
    ("failed_attempt", "delay"), [(1, 0.5), (2, 1.5), (3, 4.5), (4, 10.0), (9, 10.0)]
)
def test_the_retry_delay_grows_by_the_multiplier_up_to_the_cap(
    failed_attempt: int, delay: float
) -> None:
    policy = RetryPolicy(attempts=10, backoff_s=0.5, multiplier=3, max_backoff_s=10)

    assert retry_delay(policy, failed_attempt) == pytest.approx(delay)


def test_no_backoff_means_no_wait() -> None:
    assert retry_delay(RetryPolicy(attempts=5), 3) == 0.0


def test_attempts_left_counts_the_first_attempt() -> None:
    policy = RetryPolicy(attempts=3)

    assert [attempts_left(policy, n) for n in (1, 2, 3)] == [True, True, False]


def test_a_retryable_failure_waits_for_its_backoff_before_the_next_attempt() -> None:
    driver = Driver(plan_of(RETRIED))
    _at_work(driver)

    failed = driver.send(
        RunResult("j:main:0:work", 1, "failed", error=RunError("E", "one")), at=10.0
    )

    assert briefs(failed) == [("run", "j:main:0:work", "retrying")]
    assert of_type(failed, RunChanged)[0].error == "E: one"
    assert driver.scheduler.next_deadline() == 11.0
    assert driver.tick(10.99) == []
    assert briefs(driver.tick(11.0)) == [("dispatch", "j:main:0:work", 2, {"value": 1})]


def test_each_retry_waits_longer_up_to_max_backoff_and_spent_retries_fail_the_run() -> None:
    driver = Driver(plan_of(RETRIED))
    _at_work(driver)
    driver.send(RunResult("j:main:0:work", 1, "failed", error=RunError("E", "one")), at=0.0)
    driver.tick(1.0)

    assert briefs(
        driver.send(RunResult("j:main:0:work", 2, "failed", error=RunError("E", "two")))
    ) == [("run", "j:main:0:work", "retrying")]
    assert driver.scheduler.next_deadline() == 2.5  # 1 * 2 = 2, capped at 1.5
    assert driver.tick(2.49) == []
    assert dispatched(driver.tick(2.5)) == ["j:main:0:work"]

    last = driver.send(RunResult("j:main:0:work", 3, "failed", error=RunError("E", "three")))

    assert briefs(last) == [
        ("run", "j:main:0:work", "failed"),
        ("run", "j:main:0:after", "skipped"),
        ("loop", "main", "failed"),
        ("job", "failed"),
    ]
    assert last[-1] == JobChanged("failed", {}, "node 'work' failed in main stage: E: three")


def test_a_retry_that_succeeds_lets_the_dataflow_go_on() -> None:
    driver = Driver(plan_of(RETRIED))
    _at_work(driver)
    driver.fail("j:main:0:work")
    driver.tick(1.0)

    assert briefs(driver.succeed("j:main:0:work", {"value": 1})) == [
        ("run", "j:main:0:work", "succeeded"),
        ("dispatch", "j:main:0:after", 1, {"value": 1}),
    ]


def test_a_non_retryable_failure_skips_the_remaining_attempts() -> None:
    driver = Driver(plan_of(RETRIED))
    _at_work(driver)

    failed = driver.fail("j:main:0:work", "FatalNodeError: bad input", retryable=False)

    assert statuses(failed)[:2] == [("j:main:0:work", "failed"), ("j:main:0:after", "skipped")]
    assert driver.scheduler.next_deadline() is None
    assert job_statuses(failed) == ["failed"]


TIMED = """
    name: timed
    nodes:
      - id: slow
        type: Sleep
        config: {seconds: 60}
        timeout_s: 5
        retry: {attempts: 2, backoff_s: 1}
"""


def test_a_dispatch_carries_its_deadline() -> None:
    plan = plan_of(TIMED)
    driver = Driver(plan)
    driver.now = 100.0

    commands = driver.start()

    assert of_type(commands, Dispatch) == [
        Dispatch(
            "j:main:0:slow",
            plan.nodes["slow"],
            "main",
            0,
            1,
            {},
            "run",
            None,
            False,
            105.0,
            "j",
            path="slow",
        )
    ]


def test_a_run_past_its_deadline_is_revoked_and_retried_with_a_timeout_error() -> None:
    driver = Driver(plan_of(TIMED))
    driver.start()

    assert driver.tick(4.9) == []
    timed_out = driver.tick(5.0)

    assert briefs(timed_out) == [
        ("revoke", "j:main:0:slow", 1),
        ("run", "j:main:0:slow", "retrying"),
    ]
    assert of_type(timed_out, RunChanged)[0].error == "TimeoutError: node ran longer than 5s"
    retried = driver.tick(6.0)
    assert of_type(retried, Dispatch)[0].attempt == 2
    assert of_type(retried, Dispatch)[0].deadline == 11.0


def test_a_late_result_of_a_timed_out_attempt_is_ignored() -> None:
    driver = Driver(plan_of(TIMED))
    driver.start()
    driver.tick(5.0)

    assert driver.send(RunResult("j:main:0:slow", 1, "succeeded", {"value": None})) == []
    driver.tick(6.0)
    assert driver.send(RunResult("j:main:0:slow", 1, "succeeded", {"value": None})) == []


def test_the_revoked_attempt_reporting_its_failure_counts_once() -> None:
    driver = Driver(plan_of(TIMED))
    driver.start()
    driver.tick(5.0)

    revoked = RunResult("j:main:0:slow", 1, "failed", error=RunError("TaskRevokedError", "revoked"))
    assert driver.send(revoked) == []
    assert driver.health()["slow"]["failed"] == 1
    driver.tick(6.0)
    driver.succeed("j:main:0:slow", {"value": None})
    assert driver.health()["slow"]["health"] == "healthy"


def test_a_timeout_on_the_last_attempt_fails_the_run() -> None:
    driver = Driver(plan_of(TIMED))
    driver.start()
    driver.tick(5.0)
    driver.tick(6.0)

    last = driver.tick(11.0)

    assert briefs(last) == [
        ("revoke", "j:main:0:slow", 2),
        ("run", "j:main:0:slow", "failed"),
        ("loop", "main", "failed"),
        ("job", "failed"),
    ]
    assert "TimeoutError: node ran longer than 5s" in (of_type(last, JobChanged)[0].error or "")


def _two_loops(on_error: str) -> str:
    return f"""
        name: on-error
        nodes:
          - {{id: bad, type: Range, config: {{stop: 4}}}}
          - {{id: flaky, type: Flaky, config: {{fail_on: [1]}}}}
          - {{id: after, type: Sleep, config: {{seconds: 0}}}}
          - {{id: out, type: Output, config: {{name: values}}}}
          - {{id: good, type: Range, config: {{stop: 3}}}}
          - {{id: twice, type: Math, config: {{op: add}}}}
          - {{id: gout, type: Output, config: {{name: doubled}}}}
        edges:
          - {{from: bad.value, to: flaky.value}}
          - {{from: flaky.value, to: after.value}}
          - {{from: after.value, to: out.value}}
          - {{from: good.value, to: twice.a}}
          - {{from: good.value, to: twice.b}}
          - {{from: twice.result, to: gout.value}}
        loops:
          bad: {{on_error: {on_error}}}
    """


def _bad_loop(driver: Driver) -> list[LoopChanged]:
    return [c for c in of_type(driver.all_commands(), LoopChanged) if c.loop == "bad"]


def test_on_error_stop_ends_the_loop_failed_while_another_loop_goes_on() -> None:
    driver = Driver(plan_of(_two_loops("stop")))
    driver.start()
    driver.answer("j:bad:0:bad")
    driver.answer("j:bad:0:flaky")
    driver.answer("j:bad:0:after")
    driver.answer("j:bad:1:bad")

    failed = driver.answer("j:bad:1:flaky")

    assert briefs(failed) == [
        ("run", "j:bad:1:flaky", "failed"),
        ("run", "j:bad:1:after", "skipped"),
        ("run", "j:bad:1:out", "skipped"),
        ("loop", "bad", "running"),  # the failed iteration is counted
        ("loop", "bad", "failed"),
    ]
    assert of_type(failed, LoopChanged)[0].failed_iterations == 1
    assert dispatched(failed) == []
    assert "j:good:0:good" in driver.inflight
    ended = driver.run()
    assert ended.status == "failed"
    assert ended.outputs == {"values": [0], "doubled": [0, 2, 4]}
    assert ended.error == "node 'flaky' failed in loop 'bad' iteration 1: NodeError: 1"


def test_on_error_continue_skips_the_iteration_and_starts_the_next() -> None:
    driver = Driver(plan_of(_two_loops("continue")))
    driver.start()
    for run_id in ["j:bad:0:bad", "j:bad:0:flaky", "j:bad:0:after", "j:bad:1:bad"]:
        driver.answer(run_id)

    failed = driver.answer("j:bad:1:flaky")

    assert briefs(failed) == [
        ("run", "j:bad:1:flaky", "failed"),
        ("run", "j:bad:1:after", "skipped"),
        ("run", "j:bad:1:out", "skipped"),
        ("loop", "bad", "running"),
        ("produce", "j:bad:2:bad", 1, 2),
    ]
    assert of_type(failed, LoopChanged)[0].failed_iterations == 1
    ended = driver.run()
    assert ended == JobChanged("completed", {"values": [0, 2, 3], "doubled": [0, 2, 4]})
    assert (_bad_loop(driver)[-1].iterations, _bad_loop(driver)[-1].failed_iterations) == (4, 1)


def test_on_error_pause_pauses_after_the_iteration_until_resumed() -> None:
    driver = Driver(plan_of(_two_loops("pause")))
    driver.start()
    for run_id in ["j:bad:0:bad", "j:bad:0:flaky", "j:bad:0:after", "j:bad:1:bad"]:
        driver.answer(run_id)

    failed = driver.answer("j:bad:1:flaky")

    assert loop_statuses(failed, "bad") == ["running", "paused"]
    assert [c.desired for c in of_type(failed, LoopChanged)] == ["paused", "paused"]
    assert dispatched(failed) == []
    while driver.inflight:  # the other loop finishes; the paused one holds the job
        driver.answer(next(iter(driver.inflight)))
    assert driver.ended() is None
    resumed = driver.send(LoopControl("bad", DesiredLoopState.RUNNING))
    assert briefs(resumed)[:2] == [("loop", "bad", "running"), ("produce", "j:bad:2:bad", 1, 2)]
    assert driver.run() == JobChanged("completed", {"values": [0, 2, 3], "doubled": [0, 2, 4]})


LATE = """
    name: late
    nodes:
      - {id: p, type: Range, config: {stop: 1}}
      - {id: side, type: Sleep, config: {seconds: 0}, blocking: false}
    edges:
      - {from: p.value, to: side.value}
"""


def test_a_late_detached_failure_under_stop_ends_the_loop_when_the_producer_is_exhausted() -> None:
    driver = Driver(plan_of(LATE))
    driver.start()
    assert dispatched(driver.answer("j:p:0:p")) == ["j:p:0:side", "j:p:1:p"]

    late = driver.fail("j:p:0:side", "E: late", retryable=False)
    assert briefs(late) == [("run", "j:p:0:side", "failed"), ("loop", "p", "running")]
    last = driver.succeed("j:p:1:p", exhausted=True)

    assert briefs(last) == [("loop", "p", "failed"), ("job", "failed")]


def test_a_late_detached_failure_under_stop_lets_an_item_already_produced_run() -> None:
    driver = Driver(plan_of(LATE.replace("stop: 1", "stop: 5")))
    driver.start()
    driver.answer("j:p:0:p")
    driver.fail("j:p:0:side", "E: late", retryable=False)

    produced = driver.answer("j:p:1:p")

    assert dispatched(produced) == ["j:p:1:side"]
    assert briefs(driver.answer("j:p:1:side")) == [
        ("run", "j:p:1:side", "succeeded"),
        ("loop", "p", "failed"),
        ("job", "failed"),
    ]


def test_a_reader_loop_failing_late_stops_polling_an_empty_queue() -> None:
    plan = plan_of(
        """
        name: late-reader
        nodes:
          - {id: r, type: QueueReader, config: {queue: q, scope: global}}
          - {id: side, type: Sleep, config: {seconds: 0}, blocking: false}
        edges:
          - {from: r.item, to: side.value}
        """
    )
    driver = Driver(plan)
    driver.start()
    driver.send(RunResult("j:r:0:r", 1, "succeeded", {"item": 1}, cursor=1, delivery="d0"))
    driver.fail("j:r:0:side", "E: late", retryable=False)

    idle = driver.send(RunResult("j:r:1:r", 1, "succeeded", idle=True))

    assert briefs(idle) == [("loop", "r", "failed"), ("job", "failed")]
