"""Starting a worker: the Celery pool that matches a Segue pool, queues, GPU rules."""

from __future__ import annotations

import os
from dataclasses import dataclass

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.settings import Settings
from workers.app import create_app

CELERY_POOLS = {"thread": "threads", "asyncio": "threads", "process": "prefork"}


@dataclass(frozen=True)
class WorkerOptions:
    """How to start one worker.

    Attributes:
        pool: The Segue pool it serves: ``thread``, ``asyncio`` or ``process``.
        queues: Queues to consume (default: the pool's name, or ``gpu``).
        concurrency: Parallel task slots (default: per pool; GPU: one per GPU).
        gpu: A GPU worker: one task at a time per GPU, prefetch 1, no fork.
        metrics_port: Serve the worker's own series (:mod:`workers.metrics`)
            on this port; 0: not at all.
    """

    pool: str = "thread"
    queues: tuple[str, ...] = ()
    concurrency: int | None = None
    gpu: bool = False
    metrics_port: int = 0


def worker_argv(options: WorkerOptions) -> list[str]:
    """The ``celery worker`` arguments for ``options``."""
    if options.gpu:
        # Threads, never prefork: CUDA must not be initialised in a parent that forks.
        pool, slots = "threads", options.concurrency or _gpu_count()
        queues = options.queues or ("gpu",)
    else:
        pool = CELERY_POOLS[options.pool]
        slots = options.concurrency or (os.cpu_count() or 2) * (4 if pool == "threads" else 1)
        queues = options.queues or (options.pool,)
    name = "gpu" if options.gpu else options.pool
    return [
        "worker",
        f"--pool={pool}",
        f"--concurrency={slots}",
        f"--queues={','.join(queues)}",
        f"--hostname=segue-{name}-{os.getpid()}@%h",
        "--loglevel=INFO",
        "--events",
        "--without-gossip",
        "--without-mingle",
    ]


def run_worker(
    options: WorkerOptions, settings: Settings | None = None, registry: NodeRegistry | None = None
) -> None:
    """Run a worker in this process until it is told to stop (SIGTERM: warm shutdown).

    Raises:
        MetricsPortUnavailable: ``options.metrics_port`` cannot be bound.
    """
    settings = settings or Settings()
    registry = registry or default_registry()
    if options.gpu:
        settings = settings.model_copy(update={"worker_prefetch": 1})
    if options.metrics_port:
        # Before the pool forks: its processes inherit the metrics folder.
        from workers import metrics  # prometheus_client, only when asked for

        types = [node_type.type_name for node_type in registry]
        metrics.start(options.metrics_port, settings.metrics_host, types=types)
    app = create_app(settings, registry, gpu=options.gpu)
    app.worker_main(worker_argv(options))


def _gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return max(1, len([d for d in visible.split(",") if d.strip()]))
    return 1  # counting devices would initialise CUDA in this (parent) process
