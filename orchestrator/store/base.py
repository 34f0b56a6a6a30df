"""The state store interface: jobs, loops, node runs, events and cache entries.

The store is the source of truth (DESIGN section 5). Writes that may race -
a redelivered task, a duplicate completion - are conditional, so recording is
exactly-once even though execution is at-least-once:

* :meth:`Store.claim_run` moves a run to ``running`` only while it is not
  finished, and only for an attempt at least as new as the stored one;
* :meth:`Store.complete_run` and :meth:`Store.record_runs` never overwrite a
  finished run: the first completion wins. Like a claim, they never replace a
  run that holds a newer attempt (a late result of a superseded attempt is
  dropped).

A finished run is one whose status is terminal
(:attr:`orchestrator.states.RunStatus.terminal`). When a run is
written, ``queue``, ``worker``, ``queued_at`` and ``started_at`` left ``None``
keep their stored values; every other field is taken from the new record.

Every implementation passes the same contract tests (``tests/store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import JsonValue

from orchestrator.store.records import (
    EventRecord,
    JobRecord,
    LogRecord,
    LoopRecord,
    LoopTally,
    ProcessRecord,
    RunRecord,
    RunTally,
    Tallies,
    WorkflowRecord,
)

__all__ = [
    "EventRecord",
    "JobRecord",
    "LogRecord",
    "LoopRecord",
    "LoopTally",
    "ProcessRecord",
    "RunRecord",
    "RunTally",
    "Store",
    "Tallies",
    "WorkflowRecord",
]


class Store(Protocol):
    """Persistence of jobs, loops, runs, events and cache entries.

    Timestamps are passed in (seconds since the epoch); a store never reads
    the clock. Implementations are safe to call from several threads.
    """

    # workflows ------------------------------------------------------------
    def save_workflow(self, name: str, digest: str, spec: dict[str, Any], at: float) -> None:
        """Store a workflow definition under its digest; the first write wins."""
        ...

    def get_workflow(self, digest: str) -> WorkflowRecord | None:
        """The workflow stored under ``digest``, or ``None``."""
        ...

    # jobs -----------------------------------------------------------------
    def create_job(self, job: JobRecord) -> None:
        """Insert a new job; raises ``StoreConflict`` if the id exists."""
        ...

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        ...

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Jobs, newest first, optionally with one status."""
        ...

    def update_job(
        self,
        job_id: str,
        *,
        status: str,
        at: float,
        outputs: dict[str, JsonValue] | None = None,
        error: str | None = None,
    ) -> None:
        """Move a job to ``status`` (a finished job is never moved again).

        ``started_at`` is set to ``at`` the first time the job is ``running``,
        ``finished_at`` when ``status`` is terminal; ``outputs`` and ``error``
        left ``None`` keep their stored values. Raises ``JobNotFound`` for an
        unknown job.
        """
        ...

    def lease_job(self, job_id: str, owner: str, until: float, now: float) -> bool:
        """Give ``owner`` the job until ``until`` (or extend its lease).

        Succeeds when the job is not finished and is unowned, already held by
        ``owner``, or its lease ended before ``now``; False otherwise (also for
        an unknown job).
        """
        ...

    def request_cancel(self, job_id: str) -> bool:
        """Ask for a job to be cancelled; False if there is no such job."""
        ...

    # loops ----------------------------------------------------------------
    def save_loops(self, loops: Sequence[LoopRecord]) -> None:
        """Insert or update loops (``desired`` is kept as stored on update)."""
        ...

    def list_loops(self, job_id: str) -> list[LoopRecord]:
        """A job's loops, ``main`` first, then in creation order."""
        ...

    def request_loop(self, job_id: str, loop: str, desired: str) -> bool:
        """Set a loop's desired state; False if the job has no such loop."""
        ...

    # runs -----------------------------------------------------------------
    def claim_run(
        self, run: RunRecord, live_after: float | None = None, event: EventRecord | None = None
    ) -> bool:
        """Record ``run`` as running for ``run.attempt``, unless already finished.

        Returns False (and changes nothing) when the stored run is finished or
        holds a newer attempt: the caller must skip the run. With
        ``live_after``, also when the run is ``running`` for another worker
        that is alive: announced ``alive`` with a heartbeat at or after
        ``live_after`` (a second delivery never runs beside the first).
        ``event`` is appended with the claim, in its transaction, only if the
        claim is written: a job's events show its runs' states in the order
        their rows took them (never ``queued`` after ``running``).
        """
        ...

    def record_in_flight(self, states: Sequence[tuple[RunRecord, EventRecord]]) -> list[bool]:
        """Record runs as ``running`` (as :meth:`claim_run` without ``live_after``)
        or ``queued`` (as :meth:`queue_run`) by each record's status, each with its
        event, all in one transaction; whether each was written."""
        ...

    def queue_run(self, run: RunRecord, event: EventRecord | None = None) -> bool:
        """Record ``run`` as queued for ``run.attempt``: only when the store holds
        no row for it, or an unfinished one of an older attempt. False (nothing
        changed) when it is finished or already holds this attempt (a worker's
        claim may have come first). ``event`` as for :meth:`claim_run`."""
        ...

    def complete_run(self, run: RunRecord) -> bool:
        """Record the end of ``run``; False (nothing changed) when it was
        already finished or holds a newer attempt."""
        ...

    def record_runs(self, runs: Sequence[RunRecord]) -> int:
        """Insert or update many runs at once, in order; finished runs and
        newer attempts are never overwritten. Returns how many records were
        written (a record that was refused does not count)."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""
        ...

    def list_runs(self, job_id: str, loop: str | None = None) -> list[RunRecord]:
        """A job's runs, by loop, iteration and node."""
        ...

    def record(self, runs: Sequence[RunRecord], events: Sequence[EventRecord]) -> None:
        """:meth:`record_runs` then :meth:`append_events`, in one transaction."""
        ...

    # events ---------------------------------------------------------------
    def append_events(self, events: Sequence[EventRecord]) -> None:
        """Append events in order (``seq`` assigned by the store)."""
        ...

    def read_events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """A job's events with ``seq > after``, oldest first."""
        ...

    # logs -----------------------------------------------------------------
    def save_logs(self, run_id: str, attempt: int, records: Sequence[LogRecord]) -> None:
        """Keep an attempt's log records, replacing any kept for that attempt
        before (a run executed again keeps the log of its latest execution)."""
        ...

    def read_logs(
        self,
        job_id: str,
        after: int = 0,
        loop: str | None = None,
        node: str | None = None,
        level: int = 0,
        limit: int = 1000,
    ) -> list[LogRecord]:
        """A job's log records with ``id > after`` (of one loop, one node, at
        ``level`` or above when asked), oldest first."""
        ...

    # cache ----------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, JsonValue] | None:
        """Stored outputs for a cache key, or ``None``."""
        ...

    def cache_put(self, key: str, type_name: str, outputs: dict[str, JsonValue], at: float) -> None:
        """Store outputs under a key; the first write wins."""
        ...

    # liveness -------------------------------------------------------------
    def announce(self, process: ProcessRecord) -> None:
        """Write a process's heartbeat (its row, by name, is replaced)."""
        ...

    def list_processes(self) -> list[ProcessRecord]:
        """Every process that announced itself and was not forgotten."""
        ...

    def forget_processes(self, before: float) -> int:
        """Delete processes whose last heartbeat is older than ``before``."""
        ...

    def bury(self, process: ProcessRecord) -> bool:
        """Mark ``process`` found dead (state ``dead``), so claims stop waiting on
        it; not if it announced itself since ``process.beat_at``. Whether it was marked."""
        ...

    # metrics --------------------------------------------------------------
    def tallies(self, bounds: Sequence[float]) -> Tallies:
        """Jobs, loops and finished runs counted over the whole store.

        Loops and runs are grouped by their job's workflow name; runs count
        only when finished (their status terminal). ``bounds`` (ascending
        seconds) are the upper bounds of :attr:`RunTally.buckets`.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
