"""What the operations page shows of the store: jobs, and one job in full.

Reads only: the store for records, :func:`~orchestrator.health.node_health`
for health, the metrics collector's snapshot for queue depths. Numbers shown
here are the numbers ``segue`` and ``/metrics`` show; nothing is recounted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nodes.registry import NodeRegistry
from orchestrator.health import node_health
from orchestrator.logs import read_logs
from orchestrator.metrics import SegueCollector
from orchestrator.metrics.snapshot import TASKS_PREFIX, Plans
from orchestrator.planner import Plan
from orchestrator.states import JobStatus, LoopStatus
from orchestrator.store.base import JobRecord, LoopRecord, RunRecord, Store
from orchestrator.views import LogLine, LogQuery, RunInfo

LOG_LINES = 200
"""The newest log lines the logs card shows (``segue logs`` shows them all)."""
IN_FLIGHT = ("queued", "running")
RATE_WINDOW_S = 10.0
"""Iterations per second are counted over this many recent seconds."""


def iteration_rate(runs: Iterable[RunRecord], loop: str, producer: str | None, now: float) -> float:
    """Iterations per second of ``loop`` over the last :data:`RATE_WINDOW_S`:
    its producer's runs that finished then (one run makes one item)."""
    if producer is None:
        return 0.0
    since = now - RATE_WINDOW_S
    done = sum(
        1
        for run in runs
        if run.loop == loop
        and run.node_id == producer
        and run.finished_at is not None
        and run.finished_at >= since
    )
    return done / RATE_WINDOW_S


def last_errors(runs: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """Per node, its latest run that holds an error (the row keeps the traceback)."""
    latest: dict[str, RunRecord] = {}
    for run in runs:
        if run.error is None:
            continue
        seen = latest.get(run.node_id)
        if seen is None or (run.finished_at or 0.0) >= (seen.finished_at or 0.0):
            latest[run.node_id] = run
    return latest


def loop_queues(plan: Plan, loop: str) -> list[str]:
    """The ``segue_queue_depth`` labels a loop's work waits in: the queue-node
    queues it reads and the Celery task queues of its nodes."""
    names = [q.name for q in plan.queues.values() if any(r.loop == loop for r in q.readers)]
    routes = {
        plan.nodes[n].route.queue
        for n in plan.loop(loop).nodes
        if n in plan.nodes and not (plan.nodes[n].role.queue or plan.nodes[n].role.settled)
    }
    return names + [TASKS_PREFIX + route for route in sorted(routes)]


@dataclass(frozen=True)
class LoopRow:
    """One loop as the loops table shows it."""

    name: str
    status: str
    desired: str
    iterations: int
    failed: int
    rate: float
    queues: list[tuple[str, int | None]]
    steerable: bool

    @property
    def requested(self) -> str | None:
        """A pending pause or stop (``pausing``, ``stopping``), else ``None``."""
        if self.desired in ("running", self.status) or LoopStatus(self.status).terminal:
            return None
        return {"paused": "pausing", "stopped": "stopping"}.get(self.desired, self.desired)


@dataclass(frozen=True)
class NodeRow:
    """One node's health and its latest error."""

    node: str
    type: str
    health: str
    succeeded: int
    failed: int
    error_rate: float
    error: RunInfo | None


@dataclass(frozen=True)
class JobView:
    """Everything the job page shows."""

    job: JobRecord
    plan: Plan | None
    loops: list[LoopRow]
    nodes: list[NodeRow]
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: list[RunInfo] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    log_node: str | None = None
    log_nodes: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return JobStatus(self.job.status).terminal


class Reads:
    """The page's reads over one store (plans compiled once per workflow)."""

    def __init__(
        self, store: Store, registry: NodeRegistry, collector: SegueCollector | None = None
    ) -> None:
        self.store = store
        self.plans = Plans(store, registry)
        self.collector = collector

    def jobs(self, limit: int = 200) -> list[JobRecord]:
        """The latest jobs, newest first."""
        return sorted(self.store.list_jobs(limit=limit), key=lambda j: -j.created_at)

    def job(self, job_id: str, now: float, log_node: str | None = None) -> JobView | None:
        """The job page's content, or ``None`` for an unknown job; its logs of
        ``log_node`` only when given (one the job has)."""
        job = self.store.get_job(job_id)
        if job is None:
            return None
        plan = self.plans.of(job)
        runs = self.store.list_runs(job_id)
        health = node_health(RunInfo.of(run) for run in runs)
        depths = self._depths()
        loops = [
            self._loop_row(record, plan, runs, depths, now)
            for record in self.store.list_loops(job_id)
        ]
        errors = last_errors(runs)
        types = {run.node_id: run.type_name for run in runs}
        if plan is not None:
            types.update({n: node.type_name for n, node in plan.nodes.items()})
        nodes = [
            NodeRow(
                node=node,
                type=types.get(node, ""),
                health=str(report["health"]),
                succeeded=int(report["succeeded"]),
                failed=int(report["failed"]),
                error_rate=float(report["error_rate"]),
                error=RunInfo.of(errors[node]) if node in errors else None,
            )
            for node, report in sorted(health.items(), key=lambda kv: _order(plan, kv[0]))
        ]
        log_nodes = [row.node for row in nodes]
        if log_node not in log_nodes:
            log_node = None
        logs = read_logs(self.store, LogQuery(job.id, node=log_node))[-LOG_LINES:]
        current = [RunInfo.of(run) for run in runs if run.status in IN_FLIGHT]
        return JobView(job, plan, loops, nodes, health, current, logs, log_node, log_nodes)

    def _depths(self) -> Mapping[str, int] | None:
        return None if self.collector is None else self.collector.snapshot().queues

    def _loop_row(
        self,
        record: LoopRecord,
        plan: Plan | None,
        runs: list[RunRecord],
        depths: Mapping[str, int] | None,
        now: float,
    ) -> LoopRow:
        producer = None
        queues: list[tuple[str, int | None]] = []
        if plan is not None and (record.name == plan.main.name or record.name in plan.loops):
            producer = plan.loop(record.name).producer
        if plan is not None and producer is not None and depths is not None:
            queues = [(name, depths.get(name)) for name in loop_queues(plan, record.name)]
        running = record.status == LoopStatus.RUNNING.value
        return LoopRow(
            name=record.name,
            status=record.status,
            desired=record.desired,
            iterations=record.iterations,
            failed=record.failed_iterations,
            rate=iteration_rate(runs, record.name, producer, now) if running else 0.0,
            queues=queues,
            steerable=producer is not None,
        )


def _order(plan: Plan | None, node: str) -> tuple[int, str]:
    if plan is not None and node in plan.nodes:
        return plan.nodes[node].position, node
    return 1 << 30, node
