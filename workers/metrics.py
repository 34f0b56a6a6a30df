"""A worker's own Prometheus series: only what lives in its processes.

Counts of runs, loops and jobs come from the coordinator (computed from the
store, they survive worker churn); a worker adds what only it can see:

* ``segue_worker_runs_in_progress{type}``: node tasks running now, per node type;
* ``segue_worker_gpu_memory_bytes{device,kind}``: CUDA memory ``allocated`` by
  tensors and ``reserved`` by torch's caching allocator, per visible device,
  once a node has initialised CUDA in the worker (torch is never imported,
  nor CUDA initialised, for metrics).

Prefork-safe: with ``--metrics-port`` the worker points
``PROMETHEUS_MULTIPROC_DIR`` at a folder of its own (the variable's value when
set, else a new temporary one) and empties it at start, before any metric
exists; every pool process writes its values there, and the worker process
serves their sum. A pool process that exits is marked dead (its live gauges
dropped) by Celery's ``worker_process_shutdown``, and one killed outright is
found at the next scrape, by its pid.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_process_shutdown
from prometheus_client import CollectorRegistry, Gauge, multiprocess, start_http_server, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from nodes.errors import SegueError
from orchestrator.celery.app import TASK_PREFIX

log = logging.getLogger("segue.worker.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


class MetricsPortUnavailable(SegueError):
    """The worker's ``--metrics-port`` cannot be bound (in use, or privileged)."""


def prepare_directory(given: str | None = None) -> Path:
    """The folder the worker's processes write their values to, emptied of old
    values, and set in ``PROMETHEUS_MULTIPROC_DIR`` for the processes it forks.

    Only ``*.db`` files are removed from a folder that was given; a folder made
    here is removed when the worker exits.
    """
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink(missing_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="segue-worker-metrics-"))
        atexit.register(_remove_in, os.getpid(), path)
    os.environ[MULTIPROC_ENV] = str(path)
    # prometheus_client picks how values are kept when it is first imported
    # (this module imported it already): pick again, now that the variable is set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def _remove_in(owner: int, path: Path) -> None:
    if os.getpid() == owner:  # not in a forked child that ran atexit
        shutil.rmtree(path, ignore_errors=True)


def sweep_dead(path: Path) -> list[int]:
    """Mark dead the pool processes that left live values and no longer exist
    (killed before ``worker_process_shutdown`` could run); returns their pids."""
    dead: list[int] = []
    for file in path.glob("gauge_live*.db"):
        match = _LIVE_FILE.match(file.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid not in dead and not _exists(pid):
            multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
            dead.append(pid)
    return dead


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerMetrics:
    """The worker's series: counted by every pool process, served by the worker.

    Create it in the worker process before the pool starts (after
    :func:`prepare_directory`), with the node types it may run (each listed
    at 0 while none runs), then :meth:`connect` Celery's signals.
    """

    def __init__(self, path: Path, types: Iterable[str] = ()) -> None:
        self.path = path
        self.in_progress = Gauge(
            "segue_worker_runs_in_progress",
            "Node tasks this worker runs now, per node type.",
            ["type"],
            multiprocess_mode="livesum",
            registry=None,
        )
        for type_name in types:  # 0 from this process, which lives as long as the worker
            self.in_progress.labels(type_name)

    def started(self, task_name: str) -> None:
        """A node task began in this process."""
        self.in_progress.labels(_node_type(task_name)).inc()

    def finished(self, task_name: str) -> None:
        """A node task ended in this process (whatever its outcome)."""
        self.in_progress.labels(_node_type(task_name)).dec()

    def connect(self) -> None:
        """Count tasks and mark exiting pool processes dead, through Celery's signals."""
        task_prerun.connect(self._on_prerun, weak=False)
        task_postrun.connect(self._on_postrun, weak=False)
        worker_process_shutdown.connect(self._on_child_exit, weak=False)

    def registry(self) -> CollectorRegistry:
        """What a scrape reads: every process's values, and GPU memory."""
        registry = CollectorRegistry()
        registry.register(_Multiprocess(self.path))
        registry.register(_GpuMemory())
        return registry

    def _on_prerun(self, sender: Any = None, **_: Any) -> None:
        self.started(getattr(sender, "name", "") or "")

    def _on_postrun(self, sender: Any = None, **_: Any) -> None:
        self.finished(getattr(sender, "name", "") or "")

    def _on_child_exit(self, **_: Any) -> None:
        multiprocess.mark_process_dead(os.getpid(), str(self.path))  # type: ignore[no-untyped-call]


def _node_type(task_name: str) -> str:
    return task_name.removeprefix(TASK_PREFIX) or "unknown"


class _Multiprocess:
    """prometheus_client's multiprocess collector, after a sweep of dead processes."""

    def __init__(self, path: Path, types: Iterable[str] = ()) -> None:
        self.path = path
        self._collector = MultiProcessCollector(None, str(path))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        sweep_dead(self.path)
        return iter(self._collector.collect())  # type: ignore[no-untyped-call]


class _GpuMemory:
    """CUDA memory of this process, once a node initialised CUDA here."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "segue_worker_gpu_memory_bytes",
            "CUDA memory of this worker per device: allocated by tensors, reserved by torch.",
            labels=["device", "kind"],
        )
        torch = sys.modules.get("torch")  # never imported here
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            for device in range(torch.cuda.device_count()):
                family.add_metric([str(device), "allocated"], torch.cuda.memory_allocated(device))
                family.add_metric([str(device), "reserved"], torch.cuda.memory_reserved(device))
        yield family


def start(
    port: int, host: str = "0.0.0.0", directory: str | None = None, types: Iterable[str] = ()
) -> WorkerMetrics:
    """Prepare the folder, count tasks and serve ``/metrics`` on ``port``; call in
    the worker process before its pool starts.

    Raises:
        MetricsPortUnavailable: The port cannot be bound.
    """
    path = prepare_directory(directory if directory is not None else os.environ.get(MULTIPROC_ENV))
    metrics = WorkerMetrics(path, types)
    try:
        start_http_server(port, addr=host, registry=metrics.registry())
    except OSError as exc:
        raise MetricsPortUnavailable(
            f"cannot serve the worker's metrics on {host}:{port} ({exc}); free the port or "
            "choose another --metrics-port (each worker of a host needs its own)"
        ) from exc
    metrics.connect()
    log.info("serving the worker's Prometheus metrics on http://%s:%d/metrics", host, port)
    return metrics
