"""A worker's own series (workers.metrics): right under the prefork pool."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, values

from workers import metrics
from workers.metrics import MULTIPROC_ENV, WorkerMetrics, prepare_directory

SLEEP = "segue.node.Sleep"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A multiprocess folder for this test; the process's prometheus_client mode
    and environment are put back afterwards."""
    monkeypatch.setenv(MULTIPROC_ENV, "unset-below")
    monkeypatch.delenv(MULTIPROC_ENV)
    kept = values.ValueClass
    path = tmp_path / "multiproc"
    path.mkdir()
    yield path
    values.ValueClass = kept


def in_progress(registry: CollectorRegistry, type_name: str = "Sleep") -> float | None:
    return registry.get_sample_value("segue_worker_runs_in_progress", {"type": type_name})


def test_the_folder_is_emptied_of_old_values_at_start_and_named_for_forked_processes(
    folder: Path,
) -> None:
    (folder / "gauge_livesum_123.db").write_bytes(b"old")
    (folder / "counter_9.db").write_bytes(b"old")
    (folder / "keep.txt").write_text("not ours")

    assert prepare_directory(str(folder)) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert os.environ[MULTIPROC_ENV] == str(folder)


def _child(worker: WorkerMetrics, how: str, release: Any) -> None:
    worker.started(SLEEP)
    if how == "finishes":
        worker.finished(SLEEP)
        worker._on_child_exit()  # what Celery's worker_process_shutdown runs
    elif how == "runs":
        release.wait(30)
    os._exit(0)  # "killed" (and "runs" at last): no shutdown signal, nothing marked


def test_runs_in_progress_sum_live_pool_processes_and_forget_dead_ones(folder: Path) -> None:
    worker = WorkerMetrics(prepare_directory(str(folder)), types=["Sleep", "Flaky"])
    registry = worker.registry()
    assert (in_progress(registry), in_progress(registry, "Flaky")) == (0, 0)
    fork = multiprocessing.get_context("fork")
    release = fork.Event()
    children = {how: fork.Process(target=_child, args=(worker, how, release)) for how in
                ("finishes", "killed", "runs")}  # fmt: skip
    for child in children.values():
        child.start()
    for how in ("finishes", "killed"):
        children[how].join(30)
    deadline = time.monotonic() + 30
    while in_progress(registry) != 1:  # until the running child has counted itself
        assert time.monotonic() < deadline, in_progress(registry)
        time.sleep(0.01)

    assert in_progress(registry) == 1
    assert not list(folder.glob(f"gauge_livesum_{children['killed'].pid}.db"))  # swept

    release.set()
    children["runs"].join(30)
    assert in_progress(registry) == 0


def test_the_worker_process_counts_its_own_threads_tasks(folder: Path) -> None:
    worker = WorkerMetrics(prepare_directory(str(folder)))
    registry = worker.registry()
    worker.started(SLEEP)
    worker.started(SLEEP)
    worker.started("segue.node.Flaky")
    worker.finished(SLEEP)

    assert (in_progress(registry), in_progress(registry, "Flaky")) == (1, 1)


def test_gpu_memory_is_read_only_from_a_torch_that_a_node_initialised(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = WorkerMetrics(prepare_directory(str(folder))).registry()
    name = "segue_worker_gpu_memory_bytes"
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert registry.get_sample_value(name, {"device": "0", "kind": "allocated"}) is None

    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        device_count=lambda: 2,
        memory_allocated=lambda d: 1000 + d,
        memory_reserved=lambda d: 4096 * (d + 1),
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert registry.get_sample_value(name, {"device": "1", "kind": "allocated"}) == 1001
    assert registry.get_sample_value(name, {"device": "1", "kind": "reserved"}) == 8192

    cuda.is_initialized = lambda: False  # imported, CUDA untouched: nothing read
    assert registry.get_sample_value(name, {"device": "0", "kind": "reserved"}) is None


def test_a_worker_whose_metrics_port_is_taken_refuses_to_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "SEGUE_HOME": str(tmp_path), "SEGUE_METRICS_HOST": "127.0.0.1"}
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "worker", "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 2, done.stderr
    assert "--metrics-port" in done.stderr and str(port) in done.stderr


def test_start_serves_the_registry(folder: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    worker = metrics.start(port, "127.0.0.1", str(folder))
    worker.started(SLEEP)
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'segue_worker_runs_in_progress{type="Sleep"} 1.0' in text
