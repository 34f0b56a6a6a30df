"""The SQL store's liveness statements: heartbeats, and claims that respect them.

A heartbeat replaces the process's row (an upsert by name). A claim that must
not run beside a live holder is the run upsert with one more condition: the
stored row is not ``running`` for another worker whose row is ``alive`` with a
heartbeat at or after ``live_after``. It stays one atomic statement, like
every run write (see :mod:`.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, delete, func, not_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.states import RunStatus
from orchestrator.store import rules
from orchestrator.store.base import EventRecord, ProcessRecord, RunRecord
from orchestrator.store.sql.bulk import RUN_COLUMNS, RunWriter, not_in, run_tuple
from orchestrator.store.sql.models import PROCESSES, RUNS

Insert = sqlite.Insert | postgresql.Insert


def announce(conn: Connection, insert: Insert, process: ProcessRecord) -> None:
    """Upsert ``process``'s row."""
    values: dict[str, Any] = {
        "name": process.name,
        "kind": process.kind,
        "host": process.host,
        "pid": process.pid,
        "started_at": process.started_at,
        "beat_at": process.beat_at,
        "state": process.state,
        "idle_since": process.idle_since,
        "holds": list(process.holds),
        "queues": list(process.queues),
        "info": dict(process.info),
    }
    new = insert.excluded
    changed = {name: new[name] for name in values if name != "name"}
    conn.execute(insert.values(values).on_conflict_do_update(index_elements=["name"], set_=changed))


def list_processes(conn: Connection) -> list[ProcessRecord]:
    """Every process row."""
    rows = conn.execute(select(PROCESSES).order_by(PROCESSES.c.started_at)).all()
    return [
        ProcessRecord(
            name=row.name,
            kind=row.kind,
            host=row.host,
            pid=row.pid,
            started_at=row.started_at,
            beat_at=row.beat_at,
            holds=tuple(row.holds or ()),
            queues=tuple(row.queues or ()),
            idle_since=row.idle_since,
            state=row.state,
            info=dict(row.info or {}),
        )
        for row in rows
    ]


def bury(conn: Connection, name: str, beat_at: float) -> bool:
    """Mark an ``alive`` row ``dead``, unless its heartbeat changed since ``beat_at``."""
    stmt = (
        update(PROCESSES)
        .where(
            PROCESSES.c.name == name,
            PROCESSES.c.beat_at == beat_at,
            PROCESSES.c.state == "alive",
        )
        .values(state="dead")
    )
    return bool(conn.execute(stmt).rowcount)


def forget(conn: Connection, before: float) -> int:
    """Delete rows whose last heartbeat is older than ``before``."""
    return conn.execute(delete(PROCESSES).where(PROCESSES.c.beat_at < before)).rowcount


def guarded_claim(conn: Connection, insert: Insert, claim: RunRecord, live_after: float) -> bool:
    """Write ``claim`` (status ``running``) unless the stored run is finished, holds
    a newer attempt, or is running for another live worker."""
    new = insert.excluded
    values = dict(zip(RUN_COLUMNS, run_tuple(claim), strict=True))
    values["outputs"] = claim.outputs  # the JSON column type serialises it
    set_: dict[str, Any] = {name: new[name] for name in RUN_COLUMNS if name != "run_id"}
    for name in rules.RUN_KEPT_WHEN_NONE:
        set_[name] = func.coalesce(new[name], RUNS.c[name])
    # Written out: SQLAlchemy will not correlate a subquery to the row an ON
    # CONFLICT clause updates (it would join node_runs again, any row matching).
    holder_alive = text(
        "EXISTS (SELECT 1 FROM processes WHERE processes.name = node_runs.worker"
        " AND processes.state = 'alive' AND processes.beat_at >= :live_after)"
    ).bindparams(live_after=live_after)
    held_elsewhere = and_(
        RUNS.c.status == RunStatus.RUNNING.value,
        RUNS.c.worker.is_not(None),
        or_(new.worker.is_(None), RUNS.c.worker != new.worker),
        holder_alive,
    )
    where = and_(
        not_in(RUNS.c.status, rules.RUN_TERMINAL),
        RUNS.c.attempt <= new.attempt,
        not_(held_elsewhere),
    )
    stmt = (
        insert.values(values)
        .on_conflict_do_update(index_elements=["run_id"], set_=set_, where=where)
        .returning(RUNS.c.run_id)
    )
    return conn.execute(stmt).first() is not None


def queue_run(conn: Connection, insert: Insert, run: RunRecord) -> bool:
    """Insert ``run`` (queued), or update an unfinished row of an older attempt."""
    values = dict(zip(RUN_COLUMNS, run_tuple(run), strict=True))
    values["outputs"] = run.outputs
    new = insert.excluded
    changed = {name: new[name] for name in RUN_COLUMNS if name != "run_id"}
    where = and_(not_in(RUNS.c.status, rules.RUN_TERMINAL), RUNS.c.attempt < new.attempt)
    stmt = (
        insert.values(values)
        .on_conflict_do_update(index_elements=["run_id"], set_=changed, where=where)
        .returning(RUNS.c.run_id)
    )
    return conn.execute(stmt).first() is not None


def in_flight(
    conn: Connection,
    insert: Insert,
    runs: RunWriter,
    states: Sequence[tuple[RunRecord, EventRecord]],
) -> tuple[list[bool], list[EventRecord]]:
    """Write each in-flight state: a ``running`` one as an unguarded claim, a
    ``queued`` one by :func:`queue_run`; whether each was written, and the events
    of those written (for the caller to append in the same transaction)."""
    written: list[bool] = []
    events: list[EventRecord] = []
    for run, event in states:
        if run.status == RunStatus.RUNNING.value:
            ok = runs.write(conn, [run]) == 1
        else:
            ok = queue_run(conn, insert, replace(run, status=RunStatus.QUEUED.value))
        written.append(ok)
        if ok:
            events.append(event)
    return written, events
