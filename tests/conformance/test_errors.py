"""DESIGN 3.7: retries with backoff, timeouts, each loop's on_error policy, node health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


def _flaky_main(executor: Harness, fail_times: int, retry: dict[str, float]) -> Workflow:
    b = executor.builder("flaky-main")
    seed = b.node("seed", "Constant", config={"value": 7})
    flaky = b.node("flaky", "Flaky", config={"fail_times": fail_times}, retry=retry)
    out = b.node("out", "Output", config={"name": "value"})
    b.edge(seed["value"], flaky["value"]).edge(flaky["value"], out["value"])
    return b.build()


def _loop_failing_on(
    executor: Harness, items: list[int], fail_on: list[int], **policy: str
) -> Workflow:
    """A loop over ``items`` whose ``check`` node fails on ``fail_on``; doubles the rest."""
    b = executor.builder("failing-loop")
    source = b.node("source", "Items", config={"items": items})
    check = b.node("check", "Flaky", config={"fail_on": fail_on})
    double = b.node("double", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "doubled"})
    b.edge(source["item"], check["value"])
    b.edge(check["value"], double["a"]).edge(check["value"], double["b"])
    b.edge(double["result"], out["value"])
    if policy:
        b.loop("source", **policy)
    return b.build()


# retries -----------------------------------------------------------------------------
def test_a_node_failing_twice_succeeds_on_its_third_attempt_as_one_run(executor: Harness) -> None:
    job = executor.submit(_flaky_main(executor, 2, {"attempts": 3, "backoff_s": 0.05}))

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"value": 7}
    [run] = executor.runs_of(job, "flaky")
    assert (run.status, run.attempt, run.error) == ("succeeded", 3, None)
    assert run.run_id == f"{job.id}:main:0:flaky"


def test_a_node_whose_retries_are_spent_fails_the_job(executor: Harness) -> None:
    job = executor.submit(_flaky_main(executor, 2, {"attempts": 2, "backoff_s": 0.05}))

    result = job.wait(timeout=30)
    assert result.status == "failed"
    assert result.loops["main"].status == "failed"
    [run] = executor.runs_of(job, "flaky")
    assert (run.status, run.attempt) == ("failed", 2)
    assert run.error is not None and "fails attempt 2" in run.error
    assert result.error is not None and "flaky" in result.error
    assert result.outputs == {"value": None}


def test_retries_wait_at_least_the_backoff_between_attempts(executor: Harness) -> None:
    retry = {"attempts": 3, "backoff_s": 0.1, "multiplier": 2, "max_backoff_s": 10}
    job = executor.submit(_flaky_main(executor, 2, retry))

    events = [e for e in job.events(timeout=30) if e.kind == "run" and e.node == "flaky"]
    assert job.wait(timeout=30).status == "completed"
    assert [(e.status, e.data["attempt"]) for e in events] == [
        ("retrying", 1),
        ("retrying", 2),
        ("succeeded", 3),
    ]
    [run] = executor.runs_of(job, "flaky")
    assert run.started_at is not None
    first_failure, second_failure = events[0].at, events[1].at
    assert second_failure - first_failure >= 0.1  # attempt 2 waited 0.1 s
    assert run.started_at - second_failure >= 0.2  # attempt 3 waited 0.1 * 2 s
    assert run.started_at - first_failure >= 0.3


def test_a_node_running_past_its_timeout_fails_with_a_timeout_error_quickly(
    executor: Harness,
) -> None:
    b = executor.builder("timeout")
    seed = b.node("seed", "Constant", config={"value": 1})
    nap = b.node("nap", "Sleep", config={"seconds": 2}, timeout_s=0.2)
    b.edge(seed["value"], nap["value"])
    started = time.monotonic()
    job = executor.submit(b.build())

    result = job.wait(timeout=30)
    assert time.monotonic() - started < 1.5
    assert result.status == "failed"
    [run] = executor.runs_of(job, "nap")
    assert (run.status, run.attempt) == ("failed", 1)
    assert run.error is not None and "TimeoutError" in run.error
    assert result.error is not None and "TimeoutError" in result.error


def test_a_timed_out_attempt_is_retried_like_any_failure(executor: Harness) -> None:
    b = executor.builder("timeout-retried")
    seed = b.node("seed", "Constant", config={"value": 1})
    nap = b.node(
        "nap", "Sleep", config={"seconds": 1}, timeout_s=0.1, retry={"attempts": 2, "backoff_s": 0}
    )
    b.edge(seed["value"], nap["value"])
    job = executor.submit(b.build())

    statuses = [(e.status, e.data["attempt"]) for e in job.events(timeout=30) if e.node == "nap"]
    assert job.wait(timeout=30).status == "failed"
    assert statuses == [("retrying", 1), ("failed", 2)]


def test_a_fatal_node_error_is_not_retried(executor: Harness) -> None:
    b = executor.builder("fatal")
    one = b.node("one", "Constant", config={"value": 1})
    zero = b.node("zero", "Constant", config={"value": 0})
    divide = b.node("divide", "Math", config={"op": "div"}, retry={"attempts": 5})
    b.edge(one["value"], divide["a"]).edge(zero["value"], divide["b"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "failed"
    [run] = executor.runs_of(job, "divide")
    assert (run.status, run.attempt) == ("failed", 1)
    assert run.error is not None and "FatalNodeError" in run.error


def test_cancelling_a_job_waiting_for_a_retry_ends_it_promptly(executor: Harness) -> None:
    job = executor.submit(_flaky_main(executor, 5, {"attempts": 6, "backoff_s": 5}))
    executor.await_event(job, lambda e: e.kind == "run" and e.status == "retrying")

    started = time.monotonic()
    job.cancel()
    result = job.wait(timeout=10)
    assert time.monotonic() - started < 1.0
    assert result.status == "cancelled"
    assert result.loops["main"].status == "cancelled"
    assert [r.status for r in executor.runs_of(job, "flaky")] == ["cancelled"]


# on_error ----------------------------------------------------------------------------
def test_on_error_stop_fails_the_loop_and_the_job_but_never_another_loop(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: two-loops-one-fails
        nodes:
          - {id: bad, type: Items, config: {items: [1, 2, 3]}}
          - {id: check, type: Flaky, config: {fail_on: [2]}}
          - {id: bad_out, type: Output, config: {name: bad}}
          - {id: good, type: Range, config: {stop: 4}}
          - {id: nap, type: Sleep, config: {seconds: 0.05}}
          - {id: good_out, type: Output, config: {name: good}}
        edges:
          - {from: bad.item, to: check.value}
          - {from: check.value, to: bad_out.value}
          - {from: good.value, to: nap.value}
          - {from: nap.value, to: good_out.value}
        loops:
          bad: {on_error: stop}
        """
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)
    assert result.status == "failed"
    assert result.error is not None and "check" in result.error
    bad, good = result.loops["bad"], result.loops["good"]
    assert (bad.status, bad.iterations, bad.failed_iterations) == ("failed", 2, 1)
    assert (good.status, good.iterations, good.failed_iterations) == ("completed", 4, 0)
    assert result.outputs == {"bad": [1], "good": [0, 1, 2, 3]}
    assert sorted({r.iteration for r in job.runs("bad")}) == [0, 1]


def test_stop_is_the_default_error_policy(executor: Harness) -> None:
    result = executor.run(_loop_failing_on(executor, [1, 2, 3], [2]))

    assert result.status == "failed"
    loop = result.loops["source"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("failed", 2, 1)
    assert result.outputs == {"doubled": [2]}


def test_on_error_continue_counts_the_failed_iteration_skips_its_downstream_and_goes_on(
    executor: Harness,
) -> None:
    job = executor.submit(_loop_failing_on(executor, [1, 2, 3, 4], [3], on_error="continue"))

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.error is None
    assert result.outputs == {"doubled": [2, 4, 8]}
    loop = result.loops["source"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("completed", 4, 1)
    failed = {r.node: r.status for r in job.runs("source") if r.iteration == 2}
    assert failed == {
        "source": "succeeded",
        "check": "failed",
        "double": "skipped",
        "out": "skipped",
    }


def test_on_error_pause_pauses_after_the_failing_iteration_until_resumed(
    executor: Harness,
) -> None:
    job = executor.submit(_loop_failing_on(executor, [1, 2, 3, 4], [2], on_error="pause"))

    executor.await_loop(job, "source", "paused")
    paused = executor.loop_info(job, "source")
    assert (paused.status, paused.iterations, paused.failed_iterations) == ("paused", 2, 1)
    assert max(r.iteration for r in job.runs("source")) == 1

    executor.client.resume_loop(job.id, "source")
    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"doubled": [2, 6, 8]}
    loop = result.loops["source"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("completed", 4, 1)


# health ------------------------------------------------------------------------------
def test_node_health_shows_a_repeatedly_failing_node_failing_and_a_sound_one_healthy(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: health
        nodes:
          - {id: source, type: Items, config: {items: [1, 2, 3, 4]}}
          - {id: sound, type: Sleep, config: {seconds: 0}}
          - {id: check, type: Flaky, config: {fail_on: [1, 2, 3, 4]}}
        edges:
          - {from: source.item, to: sound.value}
          - {from: sound.value, to: check.value}
        loops:
          source: {on_error: continue}
        """
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.loops["source"].failed_iterations == 4
    health = executor.client.node_health(job.id)
    assert health["check"]["health"] == "failing"
    assert (health["check"]["succeeded"], health["check"]["failed"]) == (0, 4)
    assert health["sound"]["health"] == "healthy"
    assert (health["sound"]["succeeded"], health["sound"]["failed"]) == (4, 0)
