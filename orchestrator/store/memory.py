"""An in-memory :class:`~orchestrator.store.base.Store` for tests and one-shot runs.

Same semantics as the SQL store (the contract tests run over both); one lock
makes every method atomic, so it is safe to share between threads.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import JsonValue

from nodes.context import MAIN
from orchestrator.store import rules, tallies
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

R = TypeVar("R")


def _clone(value: Any) -> Any:
    """A copy of a JSON value (dicts and lists copied, leaves shared: they are immutable)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _copy(record: R) -> R:
    """A record whose JSON fields are copies (records themselves are frozen)."""
    if record is None:
        return record
    changes = {k: _clone(v) for k, v in vars(record).items() if isinstance(v, dict | list)}
    return replace(record, **changes) if changes else record  # type: ignore[type-var]


@dataclass(frozen=True)
class _CacheEntry:
    type_name: str
    outputs: dict[str, JsonValue]
    created_at: float


class MemoryStore:
    """Keeps everything in dictionaries; nothing survives the process.

    JSON values are copied on the way in and out, like a database would, so a
    caller mutating a dict it passed or got back never changes the store.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # record() holds it around record_runs and append_events
        self._workflows: dict[str, WorkflowRecord] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._loops: dict[tuple[str, str], LoopRecord] = {}
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._seq = 0
        self._cache: dict[str, _CacheEntry] = {}
        self._processes: dict[str, ProcessRecord] = {}
        self._logs: dict[str, list[LogRecord]] = {}  # by job, by id
        self._log_id = 0

    # workflows ------------------------------------------------------------
    def save_workflow(self, name: str, digest: str, spec: dict[str, Any], at: float) -> None:
        """Store a workflow definition under its digest; the first write wins."""
        record = WorkflowRecord(name=name, digest=digest, spec=_clone(spec), created_at=at)
        with self._lock:
            self._workflows.setdefault(digest, record)

    def get_workflow(self, digest: str) -> WorkflowRecord | None:
        """The workflow stored under ``digest``, or ``None``."""
        with self._lock:
            return _copy(self._workflows.get(digest))

    # jobs -------------------------------------------------------------------
    def create_job(self, job: JobRecord) -> None:
        """Insert a new job; raises ``StoreConflict`` if the id exists."""
        with self._lock:
            if job.id in self._jobs:
                raise StoreConflict(f"job {job.id!r} already exists (table jobs)")
            self._jobs[job.id] = _copy(job)

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None``."""
        with self._lock:
            return _copy(self._jobs.get(job_id))

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Jobs, newest first (by ``created_at``, then id), optionally with one status."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if status is None or j.status == status]
            jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
            return [_copy(j) for j in jobs[:limit]]

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
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(job_id)
            if job.status in rules.JOB_TERMINAL:
                return
            self._jobs[job_id] = replace(
                job,
                status=status,
                outputs=_clone(outputs) if outputs is not None else job.outputs,
                error=error if error is not None else job.error,
                started_at=rules.job_started_at(status, job.started_at, at),
                finished_at=rules.job_finished_at(status, job.finished_at, at),
            )

    def lease_job(self, job_id: str, owner: str, until: float, now: float) -> bool:
        """Give ``owner`` the job until ``until``; False if another holds it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in rules.JOB_TERMINAL:
                return False
            if not rules.lease_free(job.owner, job.lease_until, owner, now):
                return False
            self._jobs[job_id] = replace(job, owner=owner, lease_until=until)
            return True

    def request_cancel(self, job_id: str) -> bool:
        """Ask for a job to be cancelled; False if there is no such job."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            self._jobs[job_id] = replace(job, cancel_requested=True)
            return True

    # loops ------------------------------------------------------------------
    def save_loops(self, loops: Sequence[LoopRecord]) -> None:
        """Insert or update loops (``desired`` is kept as stored on update)."""
        with self._lock:
            for loop in loops:
                key = (loop.job_id, loop.name)
                stored = self._loops.get(key)
                new = _copy(loop)
                # Assigning to an existing key keeps the loop's place in creation order.
                self._loops[key] = new if stored is None else replace(new, desired=stored.desired)

    def list_loops(self, job_id: str) -> list[LoopRecord]:
        """A job's loops, ``main`` first, then in creation order."""
        with self._lock:
            loops = [loop for (job, _), loop in self._loops.items() if job == job_id]
            loops.sort(key=lambda loop: loop.name != MAIN)
            return [_copy(loop) for loop in loops]

    def request_loop(self, job_id: str, loop: str, desired: str) -> bool:
        """Set a loop's desired state; False if the job has no such loop."""
        with self._lock:
            stored = self._loops.get((job_id, loop))
            if stored is None:
                return False
            self._loops[(job_id, loop)] = replace(stored, desired=desired)
            return True

    # runs -------------------------------------------------------------------
    def claim_run(
        self, run: RunRecord, live_after: float | None = None, event: EventRecord | None = None
    ) -> bool:
        """Record ``run`` as running for ``run.attempt``, unless already finished
        or (with ``live_after``) running for another live worker; ``event`` with it."""
        with self._lock:
            if live_after is not None and rules.held_elsewhere(
                self._runs.get(run.run_id), run.worker, lambda name: self._live(name, live_after)
            ):
                return False
            return self._with_event(self._write_run(replace(run, status="running")), event)

    def _live(self, name: str, after: float) -> bool:
        process = self._processes.get(name)
        return process is not None and process.state == "alive" and process.beat_at >= after

    def queue_run(self, run: RunRecord, event: EventRecord | None = None) -> bool:
        """Record ``run`` as queued unless its row is finished or holds this attempt;
        ``event`` with it."""
        with self._lock:
            if not rules.queue_accepts(self._runs.get(run.run_id), run):
                return False
            self._runs[run.run_id] = _copy(replace(run, status="queued"))
            return self._with_event(True, event)

    def record_in_flight(self, states: Sequence[tuple[RunRecord, EventRecord]]) -> list[bool]:
        """Record each state as a claim or a queued run, with its event (see
        :meth:`Store.record_in_flight`)."""
        with self._lock:
            return [
                self.claim_run(run, event=event)
                if run.status == "running"
                else self.queue_run(run, event=event)
                for run, event in states
            ]

    def _with_event(self, written: bool, event: EventRecord | None) -> bool:
        """Append ``event`` if its run's state was ``written`` (the lock held, as one
        transaction): another writer's state and event come wholly before or after."""
        if written and event is not None:
            self.append_events([event])
        return written

    def complete_run(self, run: RunRecord) -> bool:
        """Record the end of ``run``; False when it was already finished."""
        with self._lock:
            return self._write_run(run)

    def record_runs(self, runs: Sequence[RunRecord]) -> int:
        """Insert or update many runs in order; returns how many were written."""
        with self._lock:
            return sum(self._write_run(run) for run in runs)

    def _write_run(self, run: RunRecord) -> bool:
        stored = self._runs.get(run.run_id)
        if not rules.run_accepts(stored, run):
            return False
        self._runs[run.run_id] = rules.merge_run(stored, _copy(run))
        return True

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""
        with self._lock:
            return _copy(self._runs.get(run_id))

    def list_runs(self, job_id: str, loop: str | None = None) -> list[RunRecord]:
        """A job's runs, by loop, iteration and node."""
        with self._lock:
            runs = [
                r
                for r in self._runs.values()
                if r.job_id == job_id and (loop is None or r.loop == loop)
            ]
            runs.sort(key=lambda r: (r.loop, r.iteration, r.node_id))
            return [_copy(r) for r in runs]

    def record(self, runs: Sequence[RunRecord], events: Sequence[EventRecord]) -> None:
        """:meth:`record_runs` then :meth:`append_events`, under one lock."""
        with self._lock:
            if runs:
                self.record_runs(runs)
            if events:
                self.append_events(events)

    # events -----------------------------------------------------------------
    def append_events(self, events: Sequence[EventRecord]) -> None:
        """Append events in order (``seq`` assigned by the store)."""
        with self._lock:
            for event in events:
                self._seq += 1
                stored = replace(_copy(event), seq=self._seq)
                self._events.setdefault(event.job_id, []).append(stored)

    def read_events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """A job's events with ``seq > after``, oldest first."""
        with self._lock:
            events = self._events.get(job_id, [])
            start = bisect.bisect_right(events, after, key=lambda e: e.seq)
            return [_copy(e) for e in events[start : start + limit]]

    # logs -------------------------------------------------------------------
    def save_logs(self, run_id: str, attempt: int, records: Sequence[LogRecord]) -> None:
        """Keep an attempt's records, replacing those kept for it before."""
        if not records:
            return
        with self._lock:
            kept = self._logs.setdefault(records[0].job_id, [])
            kept[:] = [r for r in kept if r.run_id != run_id or r.attempt != attempt]
            for record in records:
                self._log_id += 1
                kept.append(replace(record, run_id=run_id, attempt=attempt, id=self._log_id))

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
        with self._lock:
            out = [
                r
                for r in self._logs.get(job_id, ())
                if r.id > after
                and (loop is None or r.loop == loop)
                and (node is None or r.node_id == node)
                and r.level >= level
            ]
        return out[:limit]

    # cache ------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, JsonValue] | None:
        """Stored outputs for a cache key, or ``None``."""
        with self._lock:
            entry = self._cache.get(key)
            return _clone(entry.outputs) if entry is not None else None

    def cache_put(self, key: str, type_name: str, outputs: dict[str, JsonValue], at: float) -> None:
        """Store outputs under a key; the first write wins."""
        with self._lock:
            self._cache.setdefault(key, _CacheEntry(type_name, _clone(outputs), at))

    # liveness ---------------------------------------------------------------
    def announce(self, process: ProcessRecord) -> None:
        """Write a process's heartbeat (its row, by name, is replaced)."""
        with self._lock:
            self._processes[process.name] = process

    def list_processes(self) -> list[ProcessRecord]:
        """Every process that announced itself and was not forgotten."""
        with self._lock:
            return list(self._processes.values())

    def forget_processes(self, before: float) -> int:
        """Delete processes whose last heartbeat is older than ``before``."""
        with self._lock:
            old = [name for name, p in self._processes.items() if p.beat_at < before]
            for name in old:
                del self._processes[name]
            return len(old)

    def bury(self, process: ProcessRecord) -> bool:
        """Mark ``process`` dead unless it announced itself since (see :class:`Store`)."""
        with self._lock:
            stored = self._processes.get(process.name)
            if stored is None or stored.beat_at != process.beat_at or stored.state != "alive":
                return False
            self._processes[process.name] = replace(stored, state="dead")
            return True

    # metrics ----------------------------------------------------------------
    def tallies(self, bounds: Sequence[float]) -> Tallies:
        """Jobs, loops and finished runs counted over the whole store."""
        with self._lock:
            return tallies.tally(self._jobs, self._loops.values(), self._runs.values(), bounds)

    def close(self) -> None:
        """Nothing to release."""
