"""Totals over stored records (:meth:`Store.tallies`), as pure functions.

The in-memory store counts with these; the SQL store asks the database the
same in aggregate queries (:mod:`orchestrator.store.sql.tallies`), and the
contract tests hold the two to the same answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from orchestrator.store import rules
from orchestrator.store.base import JobRecord, LoopRecord, LoopTally, RunRecord, RunTally, Tallies


def duration(run: RunRecord) -> float | None:
    """How long a run took (end minus start), or ``None`` when either is unknown."""
    if run.started_at is None or run.finished_at is None:
        return None
    return run.finished_at - run.started_at


def tally(
    jobs: Mapping[str, JobRecord],
    loops: Iterable[LoopRecord],
    runs: Iterable[RunRecord],
    bounds: Sequence[float],
) -> Tallies:
    """Jobs by status, loops and finished runs grouped by their job's workflow.

    Loops and runs whose job is not in ``jobs`` are left out (the SQL store
    joins them to their job).
    """
    by_loop: dict[tuple[str, str, str], list[int]] = {}
    for loop in loops:
        job = jobs.get(loop.job_id)
        if job is None:
            continue
        sums = by_loop.setdefault((job.workflow, loop.name, loop.status), [0, 0, 0])
        sums[0] += 1
        sums[1] += loop.iterations
        sums[2] += loop.failed_iterations
    by_run: dict[tuple[str, str, str], list[RunRecord]] = {}
    for run in runs:
        job = jobs.get(run.job_id)
        if job is None or run.status not in rules.RUN_TERMINAL:
            continue
        by_run.setdefault((job.workflow, run.type_name, run.status), []).append(run)
    return Tallies(
        jobs=dict(Counter(job.status for job in jobs.values())),
        loops=tuple(LoopTally(*key, *sums) for key, sums in sorted(by_loop.items())),
        runs=tuple(_run_tally(key, group, bounds) for key, group in sorted(by_run.items())),
    )


def _run_tally(
    key: tuple[str, str, str], runs: list[RunRecord], bounds: Sequence[float]
) -> RunTally:
    seconds = [d for d in map(duration, runs) if d is not None]
    return RunTally(
        *key,
        runs=len(runs),
        timed=len(seconds),
        seconds=sum(seconds),
        buckets=tuple(sum(1 for d in seconds if d <= bound) for bound in bounds),
    )
