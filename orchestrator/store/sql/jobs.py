"""The SQL store's job and loop statements (tables ``jobs`` and ``loops``).

A finished job is never moved again: every update of a job is conditional on
its status not being terminal. A lease is one conditional update too, so two
drivers asking for the same job at once cannot both get it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nodes.context import MAIN
from orchestrator.states import JobStatus
from orchestrator.store import rules
from orchestrator.store.base import JobRecord, LoopRecord
from orchestrator.store.sql import convert
from orchestrator.store.sql.bulk import not_in
from orchestrator.store.sql.models import JOBS, LOOPS

Insert = sqlite.Insert | postgresql.Insert


def create(conn: Connection, insert: Insert, job: JobRecord) -> bool:
    """Insert ``job``; False when its id exists."""
    stmt = insert.on_conflict_do_nothing(index_elements=["id"]).returning(JOBS.c.id)
    return conn.execute(stmt, convert.params(job)).first() is not None


def get(conn: Connection, job_id: str) -> JobRecord | None:
    """The job, or ``None``."""
    row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
    return convert.job_record(row) if row is not None else None


def list_jobs(conn: Connection, status: str | None, limit: int) -> list[JobRecord]:
    """Jobs, newest first (by ``created_at``, then id), optionally with one status."""
    stmt = select(JOBS).order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(JOBS.c.status == status)
    return [convert.job_record(row) for row in conn.execute(stmt).all()]


def move(
    conn: Connection,
    job_id: str,
    status: str,
    at: float,
    outputs: dict[str, JsonValue] | None,
    error: str | None,
) -> bool:
    """Move an unfinished job to ``status``; False when there is no such job.

    The update is one statement; the read after it only tells a finished job
    (left as it is) from a missing one.
    """
    values: dict[str, Any] = {"status": status}
    if status == JobStatus.RUNNING:
        values["started_at"] = func.coalesce(JOBS.c.started_at, at)
    if status in rules.JOB_TERMINAL:
        values["finished_at"] = at
    if outputs is not None:
        values["outputs"] = outputs
    if error is not None:
        values["error"] = error
    stmt = (
        update(JOBS)
        .where(JOBS.c.id == job_id, not_in(JOBS.c.status, rules.JOB_TERMINAL))
        .values(values)
    )
    if conn.execute(stmt).rowcount == 1:
        return True
    return conn.execute(select(JOBS.c.id).where(JOBS.c.id == job_id)).first() is not None


def lease(conn: Connection, job_id: str, owner: str, until: float, now: float) -> bool:
    """Give ``owner`` the unfinished job until ``until``; False if another holds it."""
    stmt = (
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            not_in(JOBS.c.status, rules.JOB_TERMINAL),
            or_(
                JOBS.c.owner.is_(None),
                JOBS.c.owner == owner,
                JOBS.c.lease_until.is_(None),
                JOBS.c.lease_until < now,
            ),
        )
        .values(owner=owner, lease_until=until)
    )
    return conn.execute(stmt).rowcount == 1


def request_cancel(conn: Connection, job_id: str) -> bool:
    """Note that the job is to be cancelled; False if there is no such job."""
    stmt = update(JOBS).where(JOBS.c.id == job_id).values(cancel_requested=True)
    return conn.execute(stmt).rowcount == 1


def save_loops(conn: Connection, insert: Insert, loops: Sequence[LoopRecord]) -> None:
    """Insert or update loops; an update keeps the stored ``desired`` state."""
    kept = {"job_id", "name", "desired", "id"}
    stmt = insert.on_conflict_do_update(
        index_elements=["job_id", "name"],
        set_={c.name: insert.excluded[c.name] for c in LOOPS.c if c.name not in kept},
    )
    conn.execute(stmt, [convert.params(loop) for loop in loops])


def list_loops(conn: Connection, job_id: str) -> list[LoopRecord]:
    """A job's loops, ``main`` first, then in creation order."""
    stmt = (
        select(LOOPS)
        .where(LOOPS.c.job_id == job_id)
        .order_by(case((LOOPS.c.name == MAIN, 0), else_=1), LOOPS.c.id)
    )
    return [convert.loop_record(row) for row in conn.execute(stmt).all()]


def request_loop(conn: Connection, job_id: str, loop: str, desired: str) -> bool:
    """Set a loop's desired state; False if the job has no such loop."""
    stmt = (
        update(LOOPS).where(LOOPS.c.job_id == job_id, LOOPS.c.name == loop).values(desired=desired)
    )
    return conn.execute(stmt).rowcount == 1
