"""Turning the scheduler's changes into store records and job events.

Shared by the embedded engine and the distributed coordinator, so both
record and report a job the same way.
"""

from __future__ import annotations

from typing import Any

from orchestrator.scheduler.commands import JobChanged, LoopChanged, RunChanged
from orchestrator.states import RunStatus
from orchestrator.store.base import EventRecord, LoopRecord, RunRecord

_FINAL = frozenset(s.value for s in RunStatus if s.terminal)


def run_record(job_id: str, change: RunChanged, at: float) -> RunRecord:
    """The store row of a run change."""
    node = change.node
    final = change.status in _FINAL
    # Runs the scheduler settles itself (Output, skipped, cancelled) carry no
    # timings of their own: a finished run still gets the time it was settled.
    finished_at = (change.finished_at if change.finished_at is not None else at) if final else None
    return RunRecord(
        run_id=change.run_id,
        job_id=job_id,
        loop=change.loop,
        iteration=change.iteration,
        node_id=change.node_id,
        type_name=node.type_name,
        status=change.status,
        attempt=change.attempt,
        queue=node.route.queue,
        worker=change.worker,
        started_at=change.started_at,
        finished_at=finished_at,
        outputs=change.outputs,
        error=change.error,
        traceback=change.traceback,
    )


def run_event(job_id: str, change: RunChanged, at: float) -> EventRecord:
    """The job event of a run change."""
    data: dict[str, Any] = {"type": change.node.type_name, "attempt": change.attempt}
    if change.error:
        data["error"] = change.error
    if change.traceback:
        data["traceback"] = change.traceback
    if change.started_at is not None and change.finished_at is not None:
        data["duration_s"] = round(change.finished_at - change.started_at, 6)
    return EventRecord(
        job_id=job_id,
        kind="run",
        at=at,
        loop=change.loop,
        iteration=change.iteration,
        node=change.node_id,
        run_id=change.run_id,
        status=change.status,
        data=data,
    )


def loop_record(job_id: str, change: LoopChanged, policy: dict[str, Any], at: float) -> LoopRecord:
    """The store row of a loop change."""
    return LoopRecord(
        job_id=job_id,
        name=change.loop,
        status=change.status,
        desired=change.desired,
        iterations=change.iterations,
        failed_iterations=change.failed_iterations,
        cursor=change.cursor,
        policy=policy,
        updated_at=at,
    )


def loop_event(job_id: str, change: LoopChanged, at: float) -> EventRecord:
    """The job event of a loop change."""
    return EventRecord(
        job_id=job_id,
        kind="loop",
        at=at,
        loop=change.loop,
        status=change.status,
        data={
            "desired": change.desired,
            "iterations": change.iterations,
            "failed_iterations": change.failed_iterations,
        },
    )


def job_event(job_id: str, change: JobChanged, at: float) -> EventRecord:
    """The job event of a job change."""
    data: dict[str, Any] = {}
    if change.error:
        data["error"] = change.error
    return EventRecord(job_id=job_id, kind="job", at=at, status=change.status, data=data)
