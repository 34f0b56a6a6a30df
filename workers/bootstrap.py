"""Starting a worker: the Celery pool that matches a Segue pool, queues, GPU rules.

A worker rides out broker outages (Celery reconnects with backoff; results wait
in the outbox of its channels) and says how it ended in its exit code: 0 after
a requested stop, non-zero when it stopped on an error - a broker it gave up
on included - so a supervisor restarts it.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import Celery
from celery.exceptions import CPendingDeprecationWarning
from celery.signals import celeryd_after_setup, worker_process_shutdown, worker_shutdown
from kombu.exceptions import OperationalError

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.celery.placement import fit_queue
from orchestrator.settings import Settings
from workers import runtime as runtimes
from workers.app import create_app
from workers.gpu import serving
from workers.gpu.serving import SHARE_RUNS, GpuPlan, GpuServing

log = logging.getLogger("segue.worker")
FLUSH_AT_EXIT_S = 10.0
"""How long a stopping worker waits for results kept while the broker is away."""

CELERY_POOLS = {"thread": "threads", "asyncio": "threads", "process": "prefork"}


@dataclass(frozen=True)
class WorkerOptions:
    """How to start one worker.

    Attributes:
        pool: The Segue pool it serves: ``thread``, ``asyncio`` or ``process``.
        queues: Queues to consume (default: the pool's name, or ``gpu``).
        concurrency: Parallel task slots (default: per pool; GPU: one per GPU).
        gpu: A GPU worker: one process per GPU (:mod:`workers.gpu`), one
            task at a time per GPU unless ``gpu_share``, prefetch 1, no fork.
        metrics_port: Serve the worker's own series (:mod:`workers.metrics`)
            on this port; 0: not at all.
        gpus: The device indexes to serve (``--gpus 0,2``); None: every GPU.
        gpu_share: Run runs side by side on a GPU while their ``vram_mb`` fits.
        gpu_reserve_mb: GPU memory kept out of admission (CUDA context, fragmentation).
    """

    pool: str = "thread"
    queues: tuple[str, ...] = ()
    concurrency: int | None = None
    gpu: bool = False
    metrics_port: int = 0
    gpus: tuple[int, ...] | None = None
    gpu_share: bool = False
    gpu_reserve_mb: int = 1024


def worker_argv(options: WorkerOptions) -> list[str]:
    """The ``celery worker`` arguments for ``options``."""
    if options.gpu:
        # Threads, never prefork: CUDA must not be initialised in a parent that forks.
        # One process serves one GPU: one slot, or room for the runs it may pack.
        pool = "threads"
        slots = options.concurrency or (SHARE_RUNS if options.gpu_share else 1)
        queues = options.queues or ("gpu",)
        plan = gpu_plan(options)
        if plan.device is not None:  # and the runs sent to GPUs of its memory (placement)
            queues = (*queues, *(fit_queue(q, plan.capacity_mb) for q in queues))
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
) -> int:
    """Run a worker in this process until it stops; returns its exit code.

    0 after SIGTERM (warm shutdown) or SIGINT; 1 when it stopped on an error,
    such as a broker it could not reach within Celery's connection retries.

    Raises:
        MetricsPortUnavailable: ``options.metrics_port`` cannot be bound.
    """
    settings = settings or Settings()
    registry = registry or default_registry()
    if options.gpu:
        settings = settings.model_copy(update={"worker_prefetch": 1})
        serving.configure(GpuServing(gpu_plan(options)))
    if options.metrics_port:
        # Before the pool forks: its processes inherit the metrics folder.
        from workers import metrics  # prometheus_client, only when asked for

        types = [node_type.type_name for node_type in registry]
        metrics.start(options.metrics_port, settings.metrics_host, types=types)
    app = create_app(settings, registry, gpu=options.gpu)
    ended: list[int] = []

    def shutdown(sender: Any = None, **_: Any) -> None:
        # Celery's command line returns the worker's exit code to its caller, and
        # ``worker_main`` drops it: it is taken here, where the worker stops.
        ended.append(int(getattr(sender, "exitcode", None) or 0))
        _flush_results()

    worker_shutdown.connect(shutdown, weak=False)
    worker_process_shutdown.connect(_flush_results, weak=False)  # prefork children
    quiet = partial(_quiet_reconnects, app)
    celeryd_after_setup.connect(quiet, weak=False)
    try:
        app.worker_main(worker_argv(options))
    finally:
        worker_shutdown.disconnect(shutdown)
        worker_process_shutdown.disconnect(_flush_results)
        celeryd_after_setup.disconnect(quiet)
    return ended[-1] if ended else 0


def _quiet_reconnects(app: Celery, **_: Any) -> None:
    """Installed once Celery set up logging (which shows every pending-deprecation warning)."""
    # Celery 5 warns at every reconnect, ten lines long, that Celery 6 will cancel
    # running tasks on a connection loss; Segue sets the behaviour it wants
    # (orchestrator.celery.app).
    warnings.filterwarnings(
        "ignore",
        message="(?s).*worker_cancel_long_running_tasks_on_connection_loss",
        category=CPendingDeprecationWarning,
    )
    with app.connection_for_read() as probe:  # not connected: only its transport's errors
        errors = (
            *probe.recoverable_connection_errors,
            *probe.recoverable_channel_errors,
            OperationalError,
            OSError,
        )
    one_line = OneLineBrokerErrors(errors)
    for handler in logging.getLogger().handlers:
        handler.addFilter(one_line)


class OneLineBrokerErrors(logging.Filter):
    """Logs a lost broker connection as the line that says so, without its traceback.

    Celery logs, for instance, each task it could not acknowledge on a dropped
    connection with a traceback some seventy lines long; the line itself names
    the task and the error, and a connection error's traceback says nothing more.
    """

    def __init__(self, errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.errors = errors

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.errors):
            record.exc_info = None
            record.exc_text = None
        return True


def _flush_results(**_: Any) -> None:
    """Send what the broker could not take yet before this process ends."""
    current = runtimes._runtime
    if current is None or not current.channels.kept:
        return
    left = current.channels.flush(FLUSH_AT_EXIT_S)
    if left:
        log.error(
            "stopping with %d run result(s) the broker never took; the coordinator sends "
            "those runs again when it finds them missing",
            left,
        )


def gpu_plan(options: WorkerOptions) -> GpuPlan:
    """How this GPU worker process shares the device its supervisor gave it
    (none on a machine without GPUs: the gpu queue served on the CPU)."""
    slots = options.concurrency or SHARE_RUNS
    return GpuPlan(
        serving.device_from_env(), options.gpu_share, options.gpu_reserve_mb, max_runs=slots
    )
