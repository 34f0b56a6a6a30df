"""DESIGN 3.16: a failed run records the exception's type, message and traceback,
and every surface shows them: the client's runs(), the job's events, the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)

FAILS_ON_7 = "NodeError: node '{}' (Flaky) fails on purpose for value 7, listed in fail_on"
"""The error of a Flaky node (its id or path in the braces) given a value it fails on."""


def _failing(executor: Harness, retry: dict[str, float]) -> Workflow:
    b = executor.builder("failing")
    seed = b.node("seed", "Constant", config={"value": 7})
    flaky = b.node("flaky", "Flaky", config={"fail_on": [7]}, retry=retry)
    out = b.node("out", "Output", config={"name": "value"})
    b.edge(seed["value"], flaky["value"]).edge(flaky["value"], out["value"])
    return b.build()


def assert_raised_by_flaky(traceback: str | None, attempt: int, node: str = "flaky") -> None:
    """``traceback`` is Python's, through Flaky's own ``run`` to its ``NodeError``."""
    assert traceback is not None
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert 'transform.py", line' in traceback and ", in run\n" in traceback
    assert "raise NodeError(" in traceback
    assert traceback.rstrip().endswith(
        f"nodes.errors.{FAILS_ON_7.format(node)} (attempt {attempt})"
    )


def test_a_failed_runs_traceback_is_recorded_with_its_error_and_shown_by_runs(
    executor: Harness,
) -> None:
    job = executor.submit(_failing(executor, {"attempts": 2, "backoff_s": 0.05}))

    assert job.wait(timeout=30).status == "failed"
    [run] = executor.runs_of(job, "flaky")
    assert (run.status, run.attempt) == ("failed", 2)
    assert run.error == f"{FAILS_ON_7.format('flaky')} (attempt 2)"
    assert_raised_by_flaky(run.traceback, attempt=2)


def test_each_failed_attempts_event_carries_its_own_error_and_traceback(
    executor: Harness,
) -> None:
    job = executor.submit(_failing(executor, {"attempts": 2, "backoff_s": 0.05}))

    events = [e for e in job.events(timeout=30) if e.kind == "run" and e.node == "flaky"]
    assert [(e.status, e.data["attempt"]) for e in events] == [("retrying", 1), ("failed", 2)]
    for event, attempt in zip(events, (1, 2), strict=True):
        assert event.error == f"{FAILS_ON_7.format('flaky')} (attempt {attempt})"
        assert event.data["error"] == event.error
        assert_raised_by_flaky(event.traceback, attempt)
        assert event.data["traceback"] == event.traceback


def test_a_run_that_succeeds_after_failing_keeps_neither_error_nor_traceback(
    executor: Harness,
) -> None:
    b = executor.builder("recovers")
    seed = b.node("seed", "Constant", config={"value": 1})
    flaky = b.node("flaky", "Flaky", config={"fail_times": 1}, retry={"attempts": 2})
    b.edge(seed["value"], flaky["value"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "completed"
    [run] = executor.runs_of(job, "flaky")
    assert (run.status, run.attempt, run.error, run.traceback) == ("succeeded", 2, None, None)


def test_a_timeout_is_an_error_without_a_traceback(executor: Harness) -> None:
    b = executor.builder("times-out")
    seed = b.node("seed", "Constant", config={"value": 1})
    nap = b.node("nap", "Sleep", config={"seconds": 2}, timeout_s=0.2)
    b.edge(seed["value"], nap["value"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "failed"
    [run] = executor.runs_of(job, "nap")
    assert run.error is not None and run.error.startswith("TimeoutError: ")
    assert run.traceback is None  # the scheduler ended it: nothing raised


def test_a_failing_node_inside_a_group_keeps_its_traceback_under_its_path(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: group-fails
        nodes:
          - {id: numbers, type: Constant, config: {value: [1, 7, 3]}}
          - id: checks
            type: Group
            config:
              input: item
              output: result
              workflow:
                name: check-one
                nodes:
                  - {id: x, type: Input, config: {name: item}}
                  - {id: flaky, type: Flaky, config: {fail_on: [7]}}
                  - {id: y, type: Output, config: {name: result}}
                edges:
                  - {from: x.value, to: flaky.value}
                  - {from: flaky.value, to: y.value}
        edges:
          - {from: numbers.value, to: checks.items}
        """
    )
    job = executor.submit(workflow)

    assert job.wait(timeout=30).status == "failed"
    runs = {r.node: r for r in job.runs()}
    child = runs["checks.1.flaky"]
    assert child.run_id == f"{job.id}:main:0:checks.1.flaky"
    error = f"{FAILS_ON_7.format('checks.1.flaky')} (attempt 1)"
    assert (child.status, child.error) == ("failed", error)
    assert_raised_by_flaky(child.traceback, attempt=1, node="checks.1.flaky")
    group = runs["checks"]
    assert group.status == "failed" and group.error is not None
    assert group.error.startswith("GroupError: ") and group.traceback is None
    assert runs["checks.0.flaky"].traceback is None  # item 0 succeeded
