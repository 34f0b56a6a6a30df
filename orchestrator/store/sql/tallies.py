"""The SQL store's totals for metrics: three aggregate queries, no rows fetched.

Runs are counted only once finished; a finished row never changes again
(first completion wins, see :mod:`.store`), so the run totals only grow. The
duration buckets are sums of ``CASE`` expressions in the same scan.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, case, func, literal, select

from orchestrator.store import rules
from orchestrator.store.base import LoopTally, RunTally, Tallies
from orchestrator.store.sql.models import JOBS, LOOPS, RUNS


def tally(conn: Connection, bounds: Sequence[float]) -> Tallies:
    """Jobs by status; loops and finished runs by their job's workflow."""
    return Tallies(jobs=_jobs(conn), loops=_loops(conn), runs=_runs(conn, bounds))


def _jobs(conn: Connection) -> dict[str, int]:
    stmt = select(JOBS.c.status, func.count()).group_by(JOBS.c.status)
    return {status: int(count) for status, count in conn.execute(stmt).all()}


def _loops(conn: Connection) -> tuple[LoopTally, ...]:
    keys = (JOBS.c.workflow, LOOPS.c.name, LOOPS.c.status)
    stmt = (
        select(
            *keys,
            func.count(),
            func.coalesce(func.sum(LOOPS.c.iterations), 0),
            func.coalesce(func.sum(LOOPS.c.failed_iterations), 0),
        )
        .select_from(LOOPS.join(JOBS, JOBS.c.id == LOOPS.c.job_id))
        .group_by(*keys)
        .order_by(*keys)
    )
    return tuple(
        LoopTally(workflow, loop, status, int(loops), int(iterations), int(failed))
        for workflow, loop, status, loops, iterations, failed in conn.execute(stmt).all()
    )


def _runs(conn: Connection, bounds: Sequence[float]) -> tuple[RunTally, ...]:
    keys = (JOBS.c.workflow, RUNS.c.type_name, RUNS.c.status)
    seconds = RUNS.c.finished_at - RUNS.c.started_at  # NULL unless both are known
    buckets = [func.sum(case((seconds <= literal(float(b)), 1), else_=0)) for b in bounds]
    stmt = (
        select(
            *keys,
            func.count(),
            func.count(seconds),
            func.coalesce(func.sum(seconds), 0.0),
            *buckets,
        )
        .select_from(RUNS.join(JOBS, JOBS.c.id == RUNS.c.job_id))
        .where(RUNS.c.status.in_(sorted(rules.RUN_TERMINAL)))
        .group_by(*keys)
        .order_by(*keys)
    )
    return tuple(
        RunTally(
            workflow,
            type_name,
            status,
            runs=int(runs),
            timed=int(timed),
            seconds=float(total),
            buckets=tuple(int(n or 0) for n in counts),
        )
        for workflow, type_name, status, runs, timed, total, *counts in conn.execute(stmt).all()
    )
