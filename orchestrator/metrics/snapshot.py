"""What the coordinator's metrics say, read from the store and the broker at once.

A :class:`Snapshot` is plain data; :func:`read_store` and :func:`read_queues`
fill it. Everything counted comes from the store or the broker, never from
the memory of a process, so any coordinator replica, restarted or not, reads
the same numbers (a worker's churn changes nothing either).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from nodes.errors import SegueError
from nodes.registry import NodeRegistry
from orchestrator.depths import BrokerDepths, task_queue_names
from orchestrator.gpufacts import live_gpus
from orchestrator.health import node_health
from orchestrator.liveness import STOPPED, alive
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow
from orchestrator.queues import queue_key
from orchestrator.reads import StoreReader
from orchestrator.states import JobStatus
from orchestrator.store.base import JobRecord, ProcessRecord, Store, Tallies

log = logging.getLogger("segue.metrics")

DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip
"""Upper bounds (seconds) of ``segue_node_duration_seconds``: milliseconds to an hour."""

MAX_RUNNING_JOBS = 1000
"""The most running jobs whose node health and queues a snapshot reads."""

TASKS_PREFIX = "celery/"
"""``segue_queue_depth`` names a Celery task queue ``celery/<queue>``."""
RESULTS_QUEUE = "segue/results"
"""``segue_queue_depth`` name of the results waiting for the coordinator (all jobs)."""
# A queue node's name never holds a "/" (nodes.library.queues.QUEUE_NAME_PATTERN),
# so these two cannot meet a queue-node queue's name.


@dataclass
class Snapshot:
    """Everything one scrape reports.

    Attributes:
        tallies: Jobs, loops and finished runs (``None``: the store was unreadable).
        health: Running jobs counted per (workflow, node, health).
        workers: Worker processes counted per (pool, state).
        queues: Messages waiting per ``segue_queue_depth`` label (``None``:
            the broker was unreadable).
        sources: Whether each source (``store``, ``broker``) could be read.
        gpus: The devices live GPU workers announce (:func:`~orchestrator.gpufacts.live_gpus`).
    """

    tallies: Tallies | None = None
    health: Counter[tuple[str, ...]] = field(default_factory=Counter)
    workers: Counter[tuple[str, ...]] = field(default_factory=Counter)
    queues: dict[str, int] | None = None
    sources: dict[str, bool] = field(default_factory=dict)
    gpus: list[dict[str, object]] = field(default_factory=list)


class Plans:
    """Plans of the stored workflows, compiled once per workflow version."""

    def __init__(self, store: Store, registry: NodeRegistry) -> None:
        self.store = store
        self.registry = registry
        self._plans: dict[str, Plan | None] = {}
        self._lock = threading.Lock()

    def of(self, job: JobRecord) -> Plan | None:
        """The job's plan; ``None`` when its workflow cannot be planned here."""
        key = job.digest or f"job:{job.id}"
        with self._lock:
            if key in self._plans:
                return self._plans[key]
        plan: Plan | None = None
        stored = self.store.get_workflow(job.digest) if job.digest else None
        spec = stored.spec if stored is not None else job.spec
        try:
            plan = compile_workflow(Workflow.from_dict(spec), self.registry)
        except SegueError as exc:
            log.warning(
                "metrics leave out job %s: its workflow cannot be planned (%s)", job.id, exc
            )
        with self._lock:
            if len(self._plans) >= MAX_RUNNING_JOBS:
                self._plans.pop(next(iter(self._plans)))
            self._plans[key] = plan
        return plan


def worker_state(process: ProcessRecord, now: float, timeout_s: float) -> str:
    """``alive``, ``stopped`` (shut down cleanly) or ``dead`` (silent, or gone)."""
    if alive(process, now, timeout_s):
        return "alive"
    return "stopped" if process.state == STOPPED else "dead"


def count_workers(
    processes: Iterable[ProcessRecord], now: float, timeout_s: float
) -> Counter[tuple[str, ...]]:
    """Worker processes per (pool, state); prefork children are slots of their
    worker, not workers."""
    counts: Counter[tuple[str, ...]] = Counter()
    for process in processes:
        if process.kind != "worker" or process.info.get("child"):
            continue
        pool = str(process.info.get("pool") or "unknown")
        counts[(pool, worker_state(process, now, timeout_s))] += 1
    return counts


def read_store(
    store: Store, now: float, timeout_s: float
) -> tuple[Snapshot, list[JobRecord], list[ProcessRecord]]:
    """The store's part of a snapshot, with the running jobs and the processes
    (what :func:`read_queues` needs)."""
    snapshot = Snapshot(tallies=store.tallies(DURATION_BUCKETS))
    running = store.list_jobs(JobStatus.RUNNING.value, limit=MAX_RUNNING_JOBS)
    reader = StoreReader(store)
    for job in running:
        for node, report in node_health(reader.runs(job.id)).items():
            snapshot.health[(job.workflow, node, report["health"])] += 1
    processes = store.list_processes()
    snapshot.workers = count_workers(processes, now, timeout_s)
    snapshot.gpus = live_gpus(processes, now, timeout_s)
    return snapshot, running, processes


def read_queues(
    depths: BrokerDepths,
    plans: Plans,
    running: Iterable[JobRecord],
    processes: Iterable[ProcessRecord],
) -> dict[str, int]:
    """Messages waiting per ``segue_queue_depth`` label.

    A queue-node queue is measured per running job that uses it (a global
    queue once), in its fullest reader group, and summed under its name; a
    Celery task queue is measured once, as ``celery/<queue>``; the results
    of every running job, as ``segue/results``.
    """
    jobs = list(running)
    routes: set[str] = set()
    node_queues: dict[str, dict[str, set[str]]] = {}  # name -> key -> reader groups
    for job in jobs:
        plan = plans.of(job)
        if plan is None:
            continue
        routes |= set(_routes(plan))
        for queue in plan.queues.values():
            groups = node_queues.setdefault(queue.name, {}).setdefault(
                queue_key(job.id, queue.name, queue.scope), set()
            )
            groups |= {reader.group or reader.loop for reader in queue.readers}
    depth: dict[str, int] = {}
    for name, keys in sorted(node_queues.items()):
        depth[name] = sum(
            max((depths.node_queue(key, group) for group in groups), default=0)
            if groups
            else depths.node_queue(key)
            for key, groups in keys.items()
        )
    for name, waiting in depths.task_queues(task_queue_names(processes, *routes)).items():
        depth[TASKS_PREFIX + name] = waiting
    depth[RESULTS_QUEUE] = sum(depths.results([job.id for job in jobs]).values())
    return depth


def _routes(plan: Plan) -> Iterator[str]:
    for node in plan.nodes.values():
        if not node.role.queue:  # queue nodes run in the coordinator, not on a worker
            yield node.route.queue
    for subplan in plan.subplans.values():
        yield from _routes(subplan)
