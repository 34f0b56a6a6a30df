"""Conversions between the store's records and table rows / statement parameters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from orchestrator.store.base import EventRecord, JobRecord, LoopRecord, RunRecord, WorkflowRecord


def params(record: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record's fields as statement parameters (shallow: JSON values are
    serialised by the column type, never shared with the caller)."""
    values = dict(vars(record))
    for name in drop:
        del values[name]
    return values


def workflow_record(row: Row[Any]) -> WorkflowRecord:
    """A ``workflows`` row as a record."""
    return WorkflowRecord(
        name=row.name, digest=row.digest, spec=row.spec, created_at=row.created_at
    )


def job_record(row: Row[Any]) -> JobRecord:
    """A ``jobs`` row as a record."""
    return JobRecord(
        id=row.id,
        workflow=row.workflow,
        digest=row.digest,
        status=row.status,
        spec=row.spec,
        inputs=row.inputs,
        outputs=row.outputs,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=bool(row.cancel_requested),
        owner=row.owner,
        lease_until=row.lease_until,
    )


def loop_record(row: Row[Any]) -> LoopRecord:
    """A ``loops`` row as a record."""
    return LoopRecord(
        job_id=row.job_id,
        name=row.name,
        status=row.status,
        desired=row.desired,
        iterations=row.iterations,
        failed_iterations=row.failed_iterations,
        cursor=row.cursor,
        policy=row.policy,
        updated_at=row.updated_at,
    )


def run_record(row: Row[Any]) -> RunRecord:
    """A ``node_runs`` row as a record."""
    return RunRecord(
        run_id=row.run_id,
        job_id=row.job_id,
        loop=row.loop,
        iteration=row.iteration,
        node_id=row.node_id,
        type_name=row.type_name,
        status=row.status,
        attempt=row.attempt,
        queue=row.queue,
        worker=row.worker,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outputs=row.outputs,
        error=row.error,
        traceback=row.traceback,
    )


def event_record(row: Row[Any]) -> EventRecord:
    """An ``events`` row as a record."""
    return EventRecord(
        job_id=row.job_id,
        kind=row.kind,
        at=row.at,
        loop=row.loop,
        iteration=row.iteration,
        node=row.node,
        run_id=row.run_id,
        status=row.status,
        data=row.data,
        seq=row.seq,
    )
