"""The SQL :class:`~orchestrator.store.base.Store`: SQLite or PostgreSQL via SQLAlchemy 2.

Exactly-once recording is one conditional upsert per run::

    INSERT INTO node_runs (...) VALUES (...)
    ON CONFLICT (run_id) DO UPDATE SET ...
    WHERE node_runs.status NOT IN (<terminal>) AND node_runs.attempt <= excluded.attempt

A row count of 1 means the record was written; 0 means the stored run was
finished or held a newer attempt. The statement is atomic on both dialects:
SQLite runs one writer at a time, and PostgreSQL locks the conflicting row and
evaluates the ``WHERE`` on its latest committed version. A batch
(:meth:`SqlStore.record_runs`) is the same statement run as executemany in one
transaction, and its row counts are summed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, Engine, select

from orchestrator.states import RunStatus
from orchestrator.store import rules
from orchestrator.store.base import (
    EventRecord,
    JobRecord,
    LogRecord,
    LoopRecord,
    ProcessRecord,
    RunRecord,
    Tallies,
    WorkflowRecord,
)
from orchestrator.store.errors import JobNotFound, StoreConflict
from orchestrator.store.sql import cache, convert, jobs, logs, processes, tallies
from orchestrator.store.sql.bulk import EventWriter, RunWriter, copy_events
from orchestrator.store.sql.connection import make_engine, upgrade
from orchestrator.store.sql.gateway import Gateway
from orchestrator.store.sql.models import CACHE, EVENTS, JOBS, LOOPS, PROCESSES, RUNS, WORKFLOWS
from orchestrator.store.sql.retry import Retry


class SqlStore:
    """The state store on a SQLAlchemy engine (SQLite file or PostgreSQL).

    Safe to share between threads: every method runs in its own connection and
    transaction from the engine's pool (see :class:`~.gateway.Gateway`).

    Args:
        engine: An engine from :func:`~orchestrator.store.sql.connection.make_engine`,
            already migrated (:meth:`open` does both).
        retry: How transient errors are retried.
    """

    def __init__(self, engine: Engine, retry: Retry | None = None) -> None:
        self._db = Gateway(engine, retry)
        self.engine = engine
        self._runs = RunWriter(engine.dialect, self._db.insert(RUNS))
        self._events = EventWriter(engine.dialect) if self._db.dialect != "postgresql" else None

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, retry: Retry | None = None) -> SqlStore:
        """Connect to ``url`` and bring its schema up to date (Alembic ``upgrade head``).

        ``postgresql://`` URLs use psycopg 3; a SQLite file's folder is created.

        Raises:
            StoreError: The URL is not supported or the migration failed.
            StoreUnavailable: The database could not be reached.
        """
        engine = make_engine(url)
        try:
            store = cls(engine, retry)
            if migrate:
                where = engine.url.render_as_string(hide_password=True)
                store._db.retry(f"migrating the store at {where}", lambda: upgrade(engine))
        except BaseException:
            engine.dispose()
            raise
        return store

    # liveness -------------------------------------------------------------
    def announce(self, process: ProcessRecord) -> None:
        """Write a process's heartbeat (its row, by name, is replaced)."""
        insert = self._db.insert(PROCESSES)
        what = f"announcing process {process.name!r} in table processes"
        self._db.write(what, lambda conn: processes.announce(conn, insert, process), single=True)

    def list_processes(self) -> list[ProcessRecord]:
        """Every process that announced itself and was not forgotten."""
        return self._db.read("reading table processes", processes.list_processes)

    def forget_processes(self, before: float) -> int:
        """Delete processes whose last heartbeat is older than ``before``."""
        what = "deleting old rows of table processes"
        return self._db.write(what, lambda conn: processes.forget(conn, before), single=True)

    def bury(self, process: ProcessRecord) -> bool:
        """Mark ``process`` dead unless it announced itself since (see :class:`Store`)."""
        what = f"marking process {process.name!r} dead in table processes"
        return self._db.write(
            what, lambda conn: processes.bury(conn, process.name, process.beat_at), single=True
        )

    def tallies(self, bounds: Sequence[float]) -> Tallies:
        """Jobs, loops and finished runs counted in aggregate queries (metrics)."""
        what = "counting jobs, loops and node_runs"
        return self._db.read(what, lambda conn: tallies.tally(conn, bounds))

    def close(self) -> None:
        """Close every connection."""
        self._db.close()

    # workflows --------------------------------------------------------------
    def save_workflow(self, name: str, digest: str, spec: dict[str, Any], at: float) -> None:
        """Store a workflow definition under its digest; the first write wins."""
        stmt = self._db.insert(WORKFLOWS).on_conflict_do_nothing(index_elements=["digest"])
        values = {"name": name, "digest": digest, "spec": spec, "created_at": at}
        self._db.write(
            f"saving workflow {name!r} ({digest}) in table workflows",
            lambda conn: conn.execute(stmt, values),
            single=True,
        )

    def get_workflow(self, digest: str) -> WorkflowRecord | None:
        """The workflow stored under ``digest``, or ``None``."""
        stmt = select(WORKFLOWS).where(WORKFLOWS.c.digest == digest)
        row = self._db.read(
            f"reading workflow {digest!r} from table workflows",
            lambda conn: conn.execute(stmt).first(),
        )
        return convert.workflow_record(row) if row is not None else None

    # jobs -------------------------------------------------------------------
    def create_job(self, job: JobRecord) -> None:
        """Insert a new job; raises ``StoreConflict`` if the id exists."""
        insert = self._db.insert(JOBS)
        written = self._db.write(
            f"creating job {job.id!r} in table jobs",
            lambda conn: jobs.create(conn, insert, job),
            idempotent=False,
            single=True,
        )
        if not written:
            raise StoreConflict(f"job {job.id!r} already exists (table jobs); pick another id")

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        what = f"reading job {job_id!r} from table jobs"
        return self._db.read(what, lambda conn: jobs.get(conn, job_id))

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Jobs, newest first (by ``created_at``, then id), optionally with one status."""
        return self._db.read("listing table jobs", lambda conn: jobs.list_jobs(conn, status, limit))

    def update_job(
        self,
        job_id: str,
        *,
        status: str,
        at: float,
        outputs: dict[str, JsonValue] | None = None,
        error: str | None = None,
    ) -> None:
        """Move a job to ``status`` (a finished job is never moved again)."""
        found = self._db.write(
            f"moving job {job_id!r} to {status!r} in table jobs",
            lambda conn: jobs.move(conn, job_id, status, at, outputs, error),
            single=True,
        )
        if not found:
            raise JobNotFound(job_id)

    def lease_job(self, job_id: str, owner: str, until: float, now: float) -> bool:
        """Give ``owner`` the job until ``until``; False if another holds it."""
        return self._db.write(
            f"leasing job {job_id!r} to {owner!r} in table jobs",
            lambda conn: jobs.lease(conn, job_id, owner, until, now),
            single=True,
        )

    def request_cancel(self, job_id: str) -> bool:
        """Ask for a job to be cancelled; False if there is no such job."""
        return self._db.write(
            f"requesting cancel of job {job_id!r} in table jobs",
            lambda conn: jobs.request_cancel(conn, job_id),
            single=True,
        )

    # loops ------------------------------------------------------------------
    def save_loops(self, loops: Sequence[LoopRecord]) -> None:
        """Insert or update loops (``desired`` is kept as stored on update)."""
        if not loops:
            return
        insert = self._db.insert(LOOPS)
        job_ids = sorted({loop.job_id for loop in loops})
        self._db.write(
            f"saving loops of job(s) {', '.join(job_ids)} in table loops",
            lambda conn: jobs.save_loops(conn, insert, loops),
        )

    def list_loops(self, job_id: str) -> list[LoopRecord]:
        """A job's loops, ``main`` first, then in creation order."""
        what = f"listing loops of job {job_id!r} from table loops"
        return self._db.read(what, lambda conn: jobs.list_loops(conn, job_id))

    def request_loop(self, job_id: str, loop: str, desired: str) -> bool:
        """Set a loop's desired state; False if the job has no such loop."""
        return self._db.write(
            f"requesting loop {loop!r} of job {job_id!r} be {desired!r}",
            lambda conn: jobs.request_loop(conn, job_id, loop, desired),
            single=True,
        )

    # runs -------------------------------------------------------------------
    def _write_runs(self, conn: Connection, runs: list[RunRecord]) -> int:
        """Upsert ``runs`` (unique run ids); the count of rows inserted or updated."""
        return self._runs.write(conn, runs)

    def claim_run(
        self, run: RunRecord, live_after: float | None = None, event: EventRecord | None = None
    ) -> bool:
        """Record ``run`` as running for ``run.attempt``, unless already finished
        or (with ``live_after``) running for another live worker; ``event`` with it."""
        claim = replace(run, status=RunStatus.RUNNING.value)
        what = f"claiming run {run.run_id!r} attempt {run.attempt} in table node_runs"
        if live_after is None:
            return self._write_state(what, lambda conn: self._write_runs(conn, [claim]) == 1, event)
        insert = self._db.insert(RUNS)
        return self._write_state(
            what, lambda conn: processes.guarded_claim(conn, insert, claim, live_after), event
        )

    def queue_run(self, run: RunRecord, event: EventRecord | None = None) -> bool:
        """Record ``run`` as queued unless its row is finished or holds this attempt;
        ``event`` with it."""
        queued = replace(run, status=RunStatus.QUEUED.value)
        insert = self._db.insert(RUNS)
        return self._write_state(
            f"recording run {run.run_id!r} attempt {run.attempt} queued in table node_runs",
            lambda conn: processes.queue_run(conn, insert, queued),
            event,
        )

    def record_in_flight(self, states: Sequence[tuple[RunRecord, EventRecord]]) -> list[bool]:
        """Record each state as :meth:`claim_run` (unguarded) or :meth:`queue_run`
        would, with its event, all in one transaction (the rows stay locked until
        it commits, so events still follow the rows' states)."""
        if not states:
            return []
        insert = self._db.insert(RUNS)

        def write(conn: Connection) -> list[bool]:
            written, events = processes.in_flight(conn, insert, self._runs, states)
            if events:
                self._write_events(conn, events)
            return written

        what = f"recording {len(states)} runs in flight in table node_runs with their events"
        return self._db.write(what, write, idempotent=False)

    def _write_state(
        self, what: str, write: Callable[[Connection], bool], event: EventRecord | None
    ) -> bool:
        """Run the conditional ``write`` of one run's state and, if it wrote, append
        ``event`` in the same transaction. The row's lock orders the transactions:
        a writer of the same run waits for this commit, so the events' ``seq``
        follow the row's states (a claim's event never precedes a queued one)."""
        if event is None:
            return self._db.write(what, write, single=True)

        def write_both(conn: Connection) -> bool:
            written = write(conn)
            if written:
                self._write_events(conn, [event])
            return written

        # Not repeated after a commit that may have landed: a claim written twice
        # would show its event twice.
        return self._db.write(f"{what} with its event", write_both, idempotent=False)

    def complete_run(self, run: RunRecord) -> bool:
        """Record the end of ``run``; False when it was already finished."""
        what = f"completing run {run.run_id!r} as {run.status!r} in table node_runs"
        return self._write_one_run(what, run)

    def _write_one_run(self, what: str, run: RunRecord) -> bool:
        return self._db.write(what, lambda conn: self._write_runs(conn, [run]) == 1, single=True)

    def record_runs(self, runs: Sequence[RunRecord]) -> int:
        """Insert or update many runs in order, in one transaction; returns how
        many records were written."""
        if not runs:
            return 0
        batches = rules.rounds(list(runs))
        first = runs[0].run_id

        def run(conn: Connection) -> int:
            return sum(self._write_runs(conn, batch) for batch in batches)

        what = f"recording {len(runs)} runs (from {first!r}) in table node_runs"
        return self._db.write(what, run)

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""
        stmt = select(RUNS).where(RUNS.c.run_id == run_id)
        row = self._db.read(
            f"reading run {run_id!r} from table node_runs", lambda conn: conn.execute(stmt).first()
        )
        return convert.run_record(row) if row is not None else None

    def list_runs(self, job_id: str, loop: str | None = None) -> list[RunRecord]:
        """A job's runs, by loop, iteration and node."""
        stmt = select(RUNS).where(RUNS.c.job_id == job_id)
        if loop is not None:
            stmt = stmt.where(RUNS.c.loop == loop)
        stmt = stmt.order_by(RUNS.c.loop, RUNS.c.iteration, RUNS.c.node_id)
        rows = self._db.read(
            f"listing runs of job {job_id!r} from table node_runs",
            lambda conn: conn.execute(stmt).all(),
        )
        return [convert.run_record(row) for row in rows]

    def record(self, runs: Sequence[RunRecord], events: Sequence[EventRecord]) -> None:
        """:meth:`record_runs` then :meth:`append_events`, in one transaction."""
        if not events:
            self.record_runs(runs)
            return
        batches = rules.rounds(list(runs))

        def write(conn: Connection) -> None:
            for batch in batches:
                self._write_runs(conn, batch)
            self._write_events(conn, events)

        what = f"recording {len(runs)} runs and {len(events)} events of job {events[0].job_id!r}"
        self._db.write(what, write, idempotent=False)

    # events -----------------------------------------------------------------
    def append_events(self, events: Sequence[EventRecord]) -> None:
        """Append events in order (``seq`` assigned by the store)."""
        if not events:
            return
        what = f"appending {len(events)} events of job {events[0].job_id!r} to table events"
        self._db.write(what, lambda conn: self._write_events(conn, events), idempotent=False)

    def _write_events(self, conn: Connection, events: Sequence[EventRecord]) -> None:
        if self._events is None:
            # PostgreSQL: COPY, a fraction of an executemany's cost per row; the
            # coordinator journals every scheduler input.
            copy_events(conn, events)
            return
        self._events.write(conn, events)

    def read_events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """A job's events with ``seq > after``, oldest first."""
        stmt = (
            select(EVENTS)
            .where(EVENTS.c.job_id == job_id, EVENTS.c.seq > after)
            .order_by(EVENTS.c.seq)
            .limit(limit)
        )
        rows = self._db.read(
            f"reading events of job {job_id!r} from table events",
            lambda conn: conn.execute(stmt).all(),
        )
        return [convert.event_record(row) for row in rows]

    # logs -------------------------------------------------------------------
    def save_logs(self, run_id: str, attempt: int, records: Sequence[LogRecord]) -> None:
        """Keep an attempt's records, replacing those kept for it before."""
        what = f"saving {len(records)} log records of run {run_id!r} to table run_logs"
        self._db.write(what, lambda conn: logs.save(conn, run_id, attempt, records))

    def read_logs(
        self,
        job_id: str,
        after: int = 0,
        loop: str | None = None,
        node: str | None = None,
        level: int = 0,
        limit: int = 1000,
    ) -> list[LogRecord]:
        """A job's records with ``id > after``, filtered, oldest first."""
        return self._db.read(
            f"reading logs of job {job_id!r} from table run_logs",
            lambda conn: logs.read(conn, job_id, after, loop, node, level, limit),
        )

    # cache ------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, JsonValue] | None:
        """Stored outputs for a cache key, or ``None``."""
        what = f"reading cache entry {key!r} from table cache_entries"
        return self._db.read(what, lambda conn: cache.get(conn, key))

    def cache_put(self, key: str, type_name: str, outputs: dict[str, JsonValue], at: float) -> None:
        """Store outputs under a key; the first write wins."""
        insert = self._db.insert(CACHE)
        what = f"storing cache entry {key!r} in table cache_entries"
        self._db.write(
            what, lambda conn: cache.put(conn, insert, key, type_name, outputs, at), single=True
        )
