"""``segue worker --gpu`` as real processes on a real store and broker, with two
GPUs faked at the device boundary (``SEGUE_FAKE_GPUS``): one worker process
per GPU with ``CUDA_VISIBLE_DEVICES`` set, devices in heartbeats, GPU facts in
``segue jobs show``, and a run no live GPU fits waiting with its health saying why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import WorkflowBuilder
from orchestrator.store import open_store
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database
from workers.gpu.devices import FAKE_GPUS_ENV

pytestmark = pytest.mark.services

FAKE_GPUS = [
    {"index": 0, "name": "Fake GPU A", "total_mb": 4096, "free_mb": 4000},
    {"index": 1, "name": "Fake GPU B", "total_mb": 8192, "free_mb": 8000},
]
ENV = {FAKE_GPUS_ENV: json.dumps(FAKE_GPUS)}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as database, redis_database() as broker:
        running = Cluster(tmp_path_factory.mktemp("gpu-pool"), broker, database, extra_env=ENV)
        try:
            running.start("coordinator")
            running.start("thread")  # the Range producer's runs
            running.start("gpu", "--gpus", "1,0", "--gpu-share")
            running.wait_ready("coordinator", "thread", "gpu")
            wait_for(lambda: len(gpu_workers(running)) == 2, "two GPU worker processes")
            yield running
        finally:
            running.stop()


def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout}s")
        time.sleep(0.2)


def gpu_workers(cluster: Cluster) -> list[dict[str, Any]]:
    store = open_store(cluster.database_url, cluster.root / "home")
    try:
        found = [
            {**p.info["gpu"], "name": p.name}
            for p in store.list_processes()
            if p.state == "alive" and isinstance(p.info.get("gpu"), dict)
        ]
    finally:
        store.close()
    return sorted(found, key=lambda gpu: gpu["index"])


def segue(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        env=cluster.env,
        timeout=60,
    )


def test_each_gpu_gets_its_own_worker_process_announcing_its_device(pool: Cluster) -> None:
    first, second = gpu_workers(pool)
    assert first["name"] != second["name"]  # two processes
    assert (first["index"], first["cuda_visible_devices"], first["name"]) == (0, "0", first["name"])
    assert second["cuda_visible_devices"] == "1" and second["total_mb"] == 8192
    assert second["usable_mb"] == 8192 - 1024 and second["free_mb"] == 8000
    assert second["share"] is True


def test_gpu_runs_record_their_device_and_peak_in_jobs_show(pool: Cluster) -> None:
    b = WorkflowBuilder("matmuls")
    seeds = b.node("seeds", "Range", config={"stop": 6})
    mm = b.node("mm", "TorchMatmul", config={"size": 64}, resources={"vram_mb": 256})
    b.edge(seeds["value"], mm["seed"])
    with pool.client() as client:
        job = client.submit(b.build())
        assert job.wait(120).status == "completed"
    shown = json.loads(segue(pool, "jobs", "show", job.id, "--json").stdout)
    facts = shown["gpu"]["mm"]
    assert facts["runs"] == 6
    assert set(facts["devices"]) <= {"Fake GPU A", "Fake GPU B"}
    assert facts["peak_mb_max"] is None  # the CPU build measures no CUDA peak
    text = segue(pool, "jobs", "show", job.id).stdout
    assert "GPU runs" in text and "Fake GPU" in text


def test_a_run_too_large_for_one_gpu_is_sent_only_to_the_larger_one(pool: Cluster) -> None:
    b = WorkflowBuilder("medium")
    seeds = b.node("seeds", "Range", config={"stop": 3})
    mm = b.node("mm", "TorchMatmul", config={"size": 8}, resources={"vram_mb": 5000})
    b.edge(seeds["value"], mm["seed"])
    with pool.client() as client:
        job = client.submit(b.build())
        assert job.wait(120).status == "completed"
    shown = json.loads(segue(pool, "jobs", "show", job.id, "--json").stdout)
    assert shown["gpu"]["mm"]["devices"] == ["Fake GPU B"]  # 5000 MiB: only B's 7168 fit
    # Placed on B's memory queue by the coordinator: A never took it to hand it back.
    log = (pool.root / "gpu.log").read_text()
    assert "declares vram_mb 5000" not in log


def test_a_run_no_live_gpu_fits_waits_and_its_health_says_why(pool: Cluster) -> None:
    b = WorkflowBuilder("too-big")
    b.node("mm", "TorchMatmul", config={"size": 8}, resources={"vram_mb": 9000})
    with pool.client() as client:
        job = client.submit(b.build())
        try:
            deadline = time.monotonic() + 60
            report: dict[str, Any] = {}
            while "waits" not in report.get("mm", {}) and time.monotonic() < deadline:
                time.sleep(0.3)
                report = client.node_health(job.id)
            assert report["mm"]["waits"] == (
                "waits for a GPU: needs 9000 MiB (vram_mb), and the largest live GPU offers "
                "7168 MiB"
            )
            text = segue(pool, "nodes", "health", job.id).stdout
            assert "mm waits for a GPU: needs 9000 MiB" in " ".join(text.split())
        finally:
            job.cancel()
        assert job.wait(60).status == "cancelled"


def test_a_run_no_live_gpu_fits_is_held_until_a_larger_gpu_worker_joins(
    tmp_path: Path,
) -> None:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path, broker, database, extra_env=ENV)
        try:
            cluster.start("coordinator")
            cluster.start("gpu", "--gpus", "0")  # Fake GPU A: 3072 MiB for runs
            cluster.wait_ready("coordinator", "gpu")
            wait_for(lambda: len(gpu_workers(cluster)) == 1, "GPU worker A")
            b = WorkflowBuilder("later")
            b.node("mm", "TorchMatmul", config={"size": 8}, resources={"vram_mb": 5000})
            with cluster.client() as client:
                job = client.submit(b.build())
                wait_for(lambda: "waits" in client.node_health(job.id).get("mm", {}), "waits")
                waits = client.node_health(job.id)["mm"]["waits"]
                assert "needs 5000 MiB (vram_mb), and the largest live GPU offers 3072 MiB" in waits
                time.sleep(2)  # held by the coordinator: A is never offered it
                assert not [r for r in job.runs() if r.status == "succeeded"]
                cluster.start("gpu-b", "--gpus", "1")  # Fake GPU B: 7168 MiB
                assert job.wait(120).status == "completed"
            shown = json.loads(segue(cluster, "jobs", "show", job.id, "--json").stdout)
            assert shown["gpu"]["mm"]["devices"] == ["Fake GPU B"]
            assert "declares vram_mb 5000" not in (tmp_path / "gpu.log").read_text()
        finally:
            cluster.stop()


def test_the_supervisor_stops_its_worker_processes_on_sigterm(tmp_path: Path) -> None:
    with redis_database() as broker:
        env = {
            **os.environ,
            **ENV,
            "SEGUE_HOME": str(tmp_path),
            "SEGUE_BROKER_URL": broker,
            "SEGUE_HEARTBEAT_PATH": str(tmp_path / "beat"),
        }
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "worker", "--gpu", "--gpus", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: (tmp_path / "beat").exists(), "heartbeat of the GPU worker")
            children = subprocess.run(
                ["pgrep", "-P", str(supervisor.pid)], capture_output=True, text=True
            ).stdout.split()
            assert len(children) == 1
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(60) == 0
            assert not Path(f"/proc/{children[0]}").exists()
        finally:
            if supervisor.poll() is None:
                supervisor.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "--gpus", "0,5"], "--gpus names device(s) [5] that do not exist"),
        (["--gpu", "--gpus", "zero"], "'zero' is not a device index"),
        (["--gpu-share"], "--gpus and --gpu-share apply to GPU workers; add --gpu"),
    ],
)
def test_bad_gpu_options_are_refused_with_a_message_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = {**os.environ, **ENV, "SEGUE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "worker", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
