"""The recording rules every store applies, as pure functions.

:class:`~orchestrator.store.memory.MemoryStore` calls them directly; the SQL
store expresses the same rules as conditional statements (``WHERE`` clauses of
an upsert), and the contract tests hold both to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from orchestrator.states import JobStatus, RunStatus
from orchestrator.store.base import RunRecord

RUN_TERMINAL: frozenset[str] = frozenset(s.value for s in RunStatus if s.terminal)
"""Statuses of a finished run: never overwritten once stored."""

JOB_TERMINAL: frozenset[str] = frozenset(s.value for s in JobStatus if s.terminal)
"""Statuses of a finished job: never moved once stored."""

RUN_KEPT_WHEN_NONE: tuple[str, ...] = ("queue", "worker", "queued_at", "started_at")
"""Run fields that keep their stored value when a new record leaves them ``None``."""


def run_accepts(stored: RunRecord | None, new: RunRecord) -> bool:
    """Whether ``new`` may be written over ``stored``.

    A run is written when it is new, or when the stored one is not finished and
    holds the same or an older attempt.
    """
    if stored is None:
        return True
    return stored.status not in RUN_TERMINAL and stored.attempt <= new.attempt


def queue_accepts(stored: RunRecord | None, new: RunRecord) -> bool:
    """Whether a ``queued`` ``new`` may be written over ``stored``: never over a
    finished run, nor over the same attempt (queued or claimed running already)."""
    return stored is None or (stored.status not in RUN_TERMINAL and stored.attempt < new.attempt)


def merge_run(stored: RunRecord | None, new: RunRecord) -> RunRecord:
    """The record stored after ``new`` is accepted over ``stored``."""
    if stored is None:
        return new
    kept = {
        name: getattr(stored, name) for name in RUN_KEPT_WHEN_NONE if getattr(new, name) is None
    }
    return replace(new, **kept) if kept else new


def job_started_at(status: str, stored: float | None, at: float) -> float | None:
    """A job's ``started_at`` after it moves to ``status`` at ``at``."""
    if stored is None and status == JobStatus.RUNNING:
        return at
    return stored


def job_finished_at(status: str, stored: float | None, at: float) -> float | None:
    """A job's ``finished_at`` after it moves to ``status`` at ``at``."""
    return at if status in JOB_TERMINAL else stored


def lease_free(owner: str | None, lease_until: float | None, who: str, now: float) -> bool:
    """Whether ``who`` may take (or renew) a job lease at ``now``."""
    return owner is None or owner == who or lease_until is None or lease_until < now


def rounds(runs: list[RunRecord]) -> list[list[RunRecord]]:
    """Split ``runs`` into rounds where each run id appears at most once.

    Round *k* holds the *k*-th record of every run id, so writing the rounds in
    order is the same as writing the records one by one; one upsert statement
    may then touch each row once (PostgreSQL refuses a second touch). Within a
    round, records are sorted by run id so concurrent writers lock rows in the
    same order.
    """
    out: list[list[RunRecord]] = []
    seen: dict[str, int] = {}
    for run in runs:
        k = seen.get(run.run_id, 0)
        seen[run.run_id] = k + 1
        if k == len(out):
            out.append([])
        out[k].append(run)
    for batch in out:
        batch.sort(key=lambda r: r.run_id)
    return out


def held_elsewhere(
    stored: RunRecord | None,
    claimer: str | None,
    live: Callable[[str], bool],
) -> bool:
    """Whether a claim by ``claimer`` must wait: the stored run is ``running`` for
    another worker that ``live`` says is alive."""
    return (
        stored is not None
        and stored.status == RunStatus.RUNNING.value
        and stored.worker is not None
        and stored.worker != claimer
        and live(stored.worker)
    )
