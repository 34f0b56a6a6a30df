"""DESIGN 3.8 and section 6: pausing, resuming, stopping and cancelling; the event
stream; and what the client refuses at submit or control time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from orchestrator import (
    JobEvent,
    JobWaitTimeout,
    LoopEndedError,
    UnknownJobError,
    UnknownLoopError,
    Workflow,
    WorkflowInvalid,
)

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


def _paced(executor: Harness, stop: int, interval_s: float) -> Workflow:
    b = executor.builder("paced")
    ticks = b.node("ticks", "Range", config={"stop": stop, "interval_s": interval_s})
    out = b.node("out", "Output", config={"name": "values"})
    b.edge(ticks["value"], out["value"])
    return b.build()


# pause and resume --------------------------------------------------------------------
def test_pause_and_resume_lose_and_repeat_no_item(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 12, 0.05))
    executor.await_run(job, "ticks")

    executor.client.pause_loop(job.id, "ticks")
    executor.await_loop(job, "ticks", "paused")
    paused = executor.loop_info(job, "ticks")
    assert paused.status == "paused"
    assert 1 <= paused.iterations < 12
    time.sleep(0.3)  # six intervals: a loop that was not paused would move on
    still = executor.loop_info(job, "ticks")
    assert (still.status, still.iterations) == ("paused", paused.iterations)

    executor.client.resume_loop(job.id, "ticks")
    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"values": list(range(12))}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("completed", 12)
    producers = executor.runs_of(job, "ticks", "ticks")
    assert [r.iteration for r in producers] == list(range(12))
    assert [r.outputs for r in producers] == [{"value": i} for i in range(12)]


def test_pausing_and_resuming_are_idempotent(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 6, 0.05))
    executor.await_run(job, "ticks")

    executor.client.pause_loop(job.id, "ticks")
    executor.client.pause_loop(job.id, "ticks")
    executor.await_loop(job, "ticks", "paused")
    executor.client.resume_loop(job.id, "ticks")
    executor.client.resume_loop(job.id, "ticks")

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"values": list(range(6))}


# stop ------------------------------------------------------------------------------
def test_stop_ends_the_loop_stopped_after_a_prefix_of_its_items(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 100, 0.02))
    executor.await_run(job, "ticks")

    executor.client.stop_loop(job.id, "ticks")
    result = job.wait(timeout=30)

    assert result.status == "completed"
    values = result.outputs["values"]
    assert 1 <= len(values) < 100
    assert values == list(range(len(values)))
    loop = result.loops["ticks"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("stopped", len(values), 0)


def test_stop_lets_the_in_flight_iteration_finish_and_starts_no_other(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: stop-in-flight
        nodes:
          - {id: ticks, type: Range, config: {stop: 10}}
          - {id: nap, type: Sleep, config: {seconds: 0.5}}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: ticks.value, to: nap.value}
          - {from: nap.value, to: out.value}
        """
    )
    job = executor.submit(workflow)
    executor.await_run(job, "ticks")  # iteration 0's nap is in flight

    executor.client.stop_loop(job.id, "ticks")
    result = job.wait(timeout=30)

    assert result.status == "completed"
    assert result.outputs == {"values": [0]}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("stopped", 1)
    assert [(r.iteration, r.status) for r in executor.runs_of(job, "nap")] == [(0, "succeeded")]


def test_a_paused_loop_can_be_stopped(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 50, 0.02))
    executor.await_run(job, "ticks")
    executor.client.pause_loop(job.id, "ticks")
    executor.await_loop(job, "ticks", "paused")

    executor.client.stop_loop(job.id, "ticks")
    result = job.wait(timeout=30)

    assert result.status == "completed"
    assert result.loops["ticks"].status == "stopped"
    values = result.outputs["values"]
    assert values == list(range(len(values)))


# cancel ----------------------------------------------------------------------------
def test_cancel_during_the_main_stage_ends_every_loop_cancelled_promptly(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: cancel-main
        nodes:
          - {id: seed, type: Constant, config: {value: 1}}
          - {id: nap, type: Sleep, config: {seconds: 3}}
          - {id: ticks, type: Range, config: {stop: 3}}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: seed.value, to: nap.value}
          - {from: ticks.value, to: out.value}
        """
    )
    job = executor.submit(workflow)
    executor.await_event(job, lambda e: e.kind == "job" and e.status == "running")

    started = time.monotonic()
    job.cancel()
    result = job.wait(timeout=30)

    assert time.monotonic() - started < 1.0
    assert result.status == "cancelled"
    assert {name: info.status for name, info in result.loops.items()} == {
        "main": "cancelled",
        "ticks": "cancelled",
    }
    assert [r.status for r in executor.runs_of(job, "nap")] == ["cancelled"]


def test_cancel_during_a_loop_revokes_its_in_flight_run_and_ends_it_cancelled(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: cancel-loop
        nodes:
          - {id: ticks, type: Range, config: {stop: 3}}
          - {id: nap, type: Sleep, config: {seconds: 3}}
        edges:
          - {from: ticks.value, to: nap.value}
        """
    )
    job = executor.submit(workflow)
    executor.await_run(job, "ticks")

    started = time.monotonic()
    executor.client.cancel(job.id)
    result = job.wait(timeout=30)

    assert time.monotonic() - started < 1.0
    assert result.status == "cancelled"
    assert result.loops["main"].status == "completed"  # it had ended before the cancel
    assert result.loops["ticks"].status == "cancelled"
    assert [(r.iteration, r.status) for r in executor.runs_of(job, "nap")] == [(0, "cancelled")]
    final = list(job.events(timeout=5))[-1]
    assert (final.kind, final.status) == ("job", "cancelled")


# events ----------------------------------------------------------------------------
def test_the_event_stream_ends_with_a_final_job_event_matching_the_result(
    executor: Harness,
) -> None:
    job = executor.submit(executor.example("running-sum"))

    events = list(job.events(timeout=30))
    result = job.wait(timeout=30)
    assert result.status == "completed"
    final = events[-1]
    assert final.final
    assert (final.kind, final.status, final.job) == ("job", "completed", job.id)
    assert [e for e in events if e.final] == [final]


def test_a_failed_jobs_event_stream_ends_with_a_failed_job_event(executor: Harness) -> None:
    b = executor.builder("fails")
    seed = b.node("seed", "Constant", config={"value": 1})
    bad = b.node("bad", "Flaky", config={"fail_on": [1]})
    b.edge(seed["value"], bad["value"])
    job = executor.submit(b.build())

    events = list(job.events(timeout=30))
    assert job.wait(timeout=30).status == "failed"
    assert (events[-1].kind, events[-1].status) == ("job", "failed")
    assert events[-1].data["error"] is not None and "bad" in events[-1].data["error"]


def test_run_events_name_their_loop_iteration_node_and_run_id(executor: Harness) -> None:
    job = executor.submit(executor.example("running-sum"))

    events: list[JobEvent] = list(job.events(timeout=30))
    totals = [e for e in events if e.kind == "run" and e.node == "total"]
    assert sorted((e.loop, e.iteration, e.status, e.run_id) for e in totals) == [
        ("numbers", i, "succeeded", f"{job.id}:numbers:{i}:total") for i in range(5)
    ]
    assert all(e.data["type"] == "Math" for e in totals)
    loop_events = [e for e in events if e.kind == "loop" and e.loop == "numbers"]
    assert loop_events[-1].status == "completed"
    assert loop_events[-1].data["iterations"] == 5


# refusals --------------------------------------------------------------------------
def test_controlling_an_unknown_loop_raises_unknown_loop_error_naming_it(
    executor: Harness,
) -> None:
    job = executor.submit(_paced(executor, 3, 0))
    job.wait(timeout=30)

    for control in (
        executor.client.pause_loop,
        executor.client.resume_loop,
        executor.client.stop_loop,
    ):
        with pytest.raises(UnknownLoopError, match="no_such_loop"):
            control(job.id, "no_such_loop")


def test_asking_about_an_unknown_job_raises_unknown_job_error_naming_it(
    executor: Harness,
) -> None:
    with pytest.raises(UnknownJobError, match="no-such-job"):
        executor.client.wait("no-such-job", timeout=1)
    with pytest.raises(UnknownJobError, match="no-such-job"):
        executor.client.loops("no-such-job")


def test_every_request_about_an_unknown_job_raises_the_same_named_error(
    executor: Harness,
) -> None:
    client = executor.client
    requests = {
        "wait": lambda: client.wait("no-such-job", timeout=1),
        "events": lambda: client.events("no-such-job"),  # at the call, not at next()
        "loops": lambda: client.loops("no-such-job"),
        "runs": lambda: client.runs("no-such-job"),
        "cancel": lambda: client.cancel("no-such-job"),
        "pause": lambda: client.pause_loop("no-such-job", "ticks"),
    }
    for name, request in requests.items():
        with pytest.raises(UnknownJobError) as caught:
            request()
        assert caught.value.job_id == "no-such-job", name


def test_an_unknown_loop_error_lists_the_loops_that_can_be_steered(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 3, 0))
    job.wait(timeout=30)

    with pytest.raises(UnknownLoopError) as caught:
        executor.client.pause_loop(job.id, "tiks")
    assert (caught.value.job_id, caught.value.loop, caught.value.known) == (
        job.id,
        "tiks",
        ("ticks",),
    )
    with pytest.raises(UnknownLoopError, match="main stage"):
        executor.client.stop_loop(job.id, "main")


def test_resuming_an_ended_loop_is_refused_and_leaves_it_as_it_ended(executor: Harness) -> None:
    job = executor.submit(_paced(executor, 3, 0))
    job.wait(timeout=30)

    with pytest.raises(LoopEndedError) as caught:
        executor.client.resume_loop(job.id, "ticks")
    assert caught.value.status == "completed"
    executor.client.stop_loop(job.id, "ticks")  # nothing to stop: not an error
    assert executor.loop_info(job, "ticks").status == "completed"


def test_waiting_too_short_raises_a_job_wait_timeout_and_the_job_goes_on(
    executor: Harness,
) -> None:
    job = executor.submit(_paced(executor, 8, 0.05))

    with pytest.raises(JobWaitTimeout) as caught:
        job.wait(timeout=0.05)
    assert isinstance(caught.value, TimeoutError) and caught.value.job_id == job.id
    assert job.wait(timeout=30).status == "completed"


def test_an_invalid_workflow_is_refused_at_submit(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: broken
        nodes:
          - {id: seed, type: Constant, config: {value: 1}}
          - {id: ghost, type: NoSuchNodeType}
        edges:
          - {from: seed.value, to: ghost.value}
        """
    )
    with pytest.raises(WorkflowInvalid) as caught:
        executor.submit(workflow)

    assert any(issue.node == "ghost" for issue in caught.value.issues)
    assert "NoSuchNodeType" in str(caught.value)


def test_a_missing_required_input_is_refused_at_submit_naming_the_input(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: needs-input
        nodes:
          - {id: n, type: Input, config: {name: threshold}}
          - {id: out, type: Output, config: {name: echoed}}
        edges:
          - {from: n.value, to: out.value}
        """
    )
    with pytest.raises(WorkflowInvalid, match="threshold"):
        executor.submit(workflow)

    result = executor.run(workflow, inputs={"threshold": 0.5})
    assert (result.status, result.outputs) == ("completed", {"echoed": 0.5})


def test_an_unknown_input_is_refused_at_submit_naming_it(executor: Harness) -> None:
    with pytest.raises(WorkflowInvalid, match="typo"):
        executor.submit(executor.example("quickstart"), inputs={"typo": 1})
