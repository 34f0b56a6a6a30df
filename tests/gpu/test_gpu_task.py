"""GPU runs through the node task on a real store and broker, the device faked at
the torch boundary (:class:`~orchestrator.gpumemory.FakeMemory`): per-run facts,
memory freed between runs, out-of-memory as a retryable failure, runs too large
for the device handed back before any claim."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import torch
from celery.exceptions import Reject

from nodes import Node, NodeConfig, Ports, Resources, RunContext
from nodes.library import builtin_registry
from orchestrator.channels import Channels
from orchestrator.gpumemory import FakeMemory
from orchestrator.settings import Settings
from orchestrator.store.base import ProcessRecord
from tests.support.services import redis_database
from workers import task
from workers.gpu import serving
from workers.gpu.devices import GpuDevice
from workers.gpu.serving import GpuPlan, GpuServing
from workers.runtime import WorkerRuntime
from workers.task import execute

pytestmark = pytest.mark.services

L4 = GpuDevice(1, "NVIDIA L4", 23034, 22000)


class Greedy(Node):
    """Asks torch for more memory than there is, when told to."""

    resources = Resources(gpu=1, vram_mb=512)

    class Config(NodeConfig):
        oom: bool = False

    class Outputs(Ports):
        ok: bool

    config: Config

    def run(self, inputs: Ports, ctx: RunContext) -> Outputs:
        if self.config.oom:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.Outputs(ok=True)


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory(free_mb=21000)


@pytest.fixture
def runtime(broker: str, tmp_path: Path, memory: FakeMemory) -> Iterator[WorkerRuntime]:
    registry = builtin_registry()
    registry.register(Greedy)
    rt = WorkerRuntime(Settings(home=tmp_path, broker_url=broker), registry, "gpu-worker-1")
    coordinator = Channels(broker)
    coordinator.consume(lambda job, deliveries: None, lambda body: None)
    coordinator.follow("job1")
    serving.configure(GpuServing(GpuPlan(L4, share=True, reserve_mb=1024), memory))
    yield rt
    serving.configure(None)
    coordinator.forget("job1", delete=True)
    coordinator.close()
    rt.close()


def request(node: str, vram_mb: int = 512, **config: Any) -> dict[str, Any]:
    return {
        "run_id": f"job1:main:0:{node}",
        "job_id": "job1",
        "loop": "main",
        "iteration": 0,
        "node_id": node,
        "type_name": "Greedy",
        "config": config,
        "queue": "gpu",
        "gpu": 1,
        "vram_mb": vram_mb,
        "attempts": 3,
    }


def reported(rt: WorkerRuntime) -> list[dict[str, Any]]:
    entries = redis.Redis.from_url(rt.settings.broker_url).xrange(rt.channels.results_queue("job1"))
    return [json.loads(fields[b"b"]) for _, fields in entries]


def test_a_gpu_run_reports_its_device_and_peak_memory_and_frees_memory_after(
    runtime: WorkerRuntime, memory: FakeMemory
) -> None:
    memory.peak = 431.5
    assert execute(runtime, request("embed")) == "succeeded"
    [event, result] = reported(runtime)
    assert event["node_event"]["kind"] == "gpu"
    facts = event["node_event"]["data"]
    assert facts["device"] == "cuda:1" and facts["device_name"] == "NVIDIA L4"
    assert facts["peak_mb"] == 431.5 and facts["vram_mb"] == 512
    assert result["status"] == "succeeded"
    assert (memory.resets, memory.frees) == (1, 1)


def test_out_of_memory_is_a_retryable_failure_naming_node_device_and_memory(
    runtime: WorkerRuntime, memory: FakeMemory
) -> None:
    assert execute(runtime, request("big", vram_mb=2048, oom=True)) == "failed"
    result = reported(runtime)[-1]
    error = result["error"]
    assert error["type"] == "GpuOutOfMemory" and error.get("retryable", True) is True
    assert "node 'big' ran out of GPU memory on GPU 1 (NVIDIA L4)" in error["message"]
    assert "vram_mb 2048" in error["message"] and "Tried to allocate 20.00 GiB" in error["message"]
    assert memory.frees == 1  # freed after the failed run too
    # The worker keeps serving.
    assert execute(runtime, request("after")) == "succeeded"


def test_a_run_larger_than_the_device_goes_back_to_the_broker_unclaimed(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task, "MISFIT_PAUSE_S", 0.0)
    with pytest.raises(Reject, match=r"declares vram_mb 40000, and this GPU offers 22010 MiB"):
        execute(runtime, task.RunRequest.model_validate(request("huge", vram_mb=40000)))
    assert runtime.store.get_run("job1:main:0:huge") is None
    assert reported(runtime) == []


def test_the_heartbeat_announces_the_device_with_its_memory(memory: FakeMemory) -> None:
    served = GpuServing(GpuPlan(L4, share=False, reserve_mb=1000), memory)
    info = served.announce()
    assert info["index"] == 1 and info["name"] == "NVIDIA L4"
    assert info["total_mb"] == 23034 and info["free_mb"] == 21000 and info["usable_mb"] == 22034


def test_a_run_larger_than_the_device_goes_on_unclaimed_to_a_live_gpu_that_fits_it(
    runtime: WorkerRuntime,
) -> None:
    runtime.store.announce(
        ProcessRecord(
            name="segue-gpu-2@h:9",
            kind="worker",
            host="h",
            pid=9,
            started_at=time.time(),
            beat_at=time.time(),
            queues=("gpu", "gpu.79000mb"),
            info={"gpu": {"index": 0, "name": "NVIDIA H100", "usable_mb": 79000}},
        )
    )
    forwarded: list[tuple[str, str]] = []
    run = task.RunRequest.model_validate(request("huge", vram_mb=40000))
    started = time.monotonic()
    outcome = execute(runtime, run, forward=lambda r, queue: forwarded.append((r.run_id, queue)))
    assert time.monotonic() - started < task.MISFIT_PAUSE_S  # not held by this worker
    assert outcome.startswith("handed on to gpu.79000mb: node 'huge' declares vram_mb 40000")
    assert forwarded == [("job1:main:0:huge", "gpu.79000mb")]
    assert runtime.store.get_run("job1:main:0:huge") is None
    assert reported(runtime) == []
