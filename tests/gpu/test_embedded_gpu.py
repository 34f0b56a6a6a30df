"""Embedded GPU runs record the facts a GPU worker reports: the device and peak
memory of each run as a ``gpu`` event, shown by ``segue jobs show`` and events,
and, once runs used a CUDA device, in the engine's heartbeat that metrics read.
The device is faked at the torch boundary (:class:`FakeMemory`) where a test
needs CUDA; otherwise the CPU build runs it and says ``cpu``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from nodes import Node, Ports, Resources, RunContext
from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Client, WorkflowBuilder
from orchestrator.engine.engine import Engine
from orchestrator.gpufacts import gpu_waits, live_gpus
from orchestrator.gpumemory import FakeMemory
from orchestrator.metrics.families import families
from orchestrator.metrics.snapshot import Snapshot
from orchestrator.model.workflow import Workflow
from orchestrator.store import MemoryStore

WORKFLOW = """
name: matmuls
nodes:
  - {id: seeds, type: Range, config: {stop: 3}}
  - {id: mm, type: TorchMatmul, config: {size: 16, device: cpu}, resources: {vram_mb: 256}}
edges:
  - {from: seeds.value, to: mm.seed}
"""


def matmuls(stop: int) -> Workflow:
    b = WorkflowBuilder("matmuls")
    seeds = b.node("seeds", "Range", config={"stop": stop})
    mm = b.node("mm", "TorchMatmul", config={"size": 16}, resources={"vram_mb": 256})
    b.edge(seeds["value"], mm["seed"])
    return b.build()


def segue(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEGUE_HOME": str(home)}
    env.pop("SEGUE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_an_embedded_gpu_run_records_its_device_and_peak_as_a_gpu_event(tmp_path: Path) -> None:
    with Client.embedded(tmp_path) as client:
        job = client.submit(matmuls(4))
        assert job.wait(60).status == "completed"
        facts = [event.data for event in job.events() if event.kind == "gpu"]
    assert len(facts) == 4
    for fact in facts:
        # The CPU build: no CUDA device, no CUDA peak; the declared memory is kept.
        assert (fact["device"], fact["device_name"], fact["peak_mb"]) == ("cpu", "cpu", None)
        assert fact["vram_mb"] == 256 and fact["seconds"] >= 0


def test_segue_run_then_jobs_show_gives_the_gpu_runs_of_an_embedded_job(tmp_path: Path) -> None:
    path = tmp_path / "matmuls.yaml"
    path.write_text(WORKFLOW)
    ran = segue(tmp_path, "run", str(path), "--json")
    assert ran.returncode == 0, ran.stderr
    job_id = json.loads(ran.stdout)["job"]
    shown = segue(tmp_path, "jobs", "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["gpu"]["mm"] == {
        "runs": 3,
        "devices": ["cpu"],
        "peak_mb_max": None,
        "peak_mb_last": None,
    }
    assert "GPU runs" in segue(tmp_path, "jobs", "show", job_id).stdout


def test_an_embedded_run_on_cuda_records_the_device_peak_and_frees_memory_between_runs() -> None:
    memory = FakeMemory(device=(0, "Fake GPU A"))
    memory.peak = 431.5
    store = MemoryStore()
    engine = Engine(
        store, MemoryArtifactStore(), builtin_registry(), gpu_memory=memory,
        heartbeat_interval_s=0.05,
    )  # fmt: skip
    try:
        job_id = engine.submit(matmuls(3))
        assert engine.wait(job_id, 60).status == "completed"
        facts = [e.data for e in engine.events(job_id, 10) if e.kind == "gpu"]
        assert [(f["device"], f["device_name"], f["peak_mb"]) for f in facts] == [
            ("cuda:0", "Fake GPU A", 431.5)
        ] * 3
        assert memory.resets == 3 and memory.frees == 3
        engine.announcer.beat()
        gpus = live_gpus(store.list_processes(), engine.clock(), 15.0)
    finally:
        engine.close()
    assert [(g["name"], g["runs"], g["last_peak_mb"], g["embedded"]) for g in gpus] == [
        ("Fake GPU A", 3, 431.5, True)
    ]
    samples = {s.name: s.value for family in families(Snapshot(gpus=gpus)) for s in family.samples}
    assert samples["segue_gpu_run_peak_bytes"] == 431.5 * 2**20
    assert samples["segue_gpu_runs_total"] == 3
    # An embedded engine serves no GPU queue: a cluster run's wait still says why.
    assert "needs 9000 MiB" in gpu_waits({"big": 9000}, gpus)["big"]


class Greedy(Node):
    """Asks torch for more memory than there is."""

    resources = Resources(gpu=1, vram_mb=512)

    class Outputs(Ports):
        ok: bool

    def run(self, inputs: Ports, ctx: RunContext) -> Outputs:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_an_embedded_run_out_of_gpu_memory_fails_retryably_naming_node_and_device() -> None:
    registry = builtin_registry()
    registry.register(Greedy)
    b = WorkflowBuilder("oom")
    b.node("greedy", "Greedy", retry={"attempts": 2})
    memory = FakeMemory(device=(0, "Fake GPU A"))
    engine = Engine(MemoryStore(), MemoryArtifactStore(), registry, gpu_memory=memory)
    try:
        job_id = engine.submit(b.build())
        assert engine.wait(job_id, 60).status == "failed"
        runs = engine.runs(job_id)
    finally:
        engine.close()
    (run,) = [r for r in runs if r.node == "greedy"]
    assert run.attempt == 2  # retried
    assert (run.error or "").startswith(
        "GpuOutOfMemory: node 'greedy' ran out of GPU memory on GPU 0 (Fake GPU A) (vram_mb 512)"
    )
    assert memory.frees == 2  # cached memory freed after each failed attempt
