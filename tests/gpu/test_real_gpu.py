"""On a machine with an NVIDIA GPU: the torch boundary itself (skipped elsewhere).

``scripts/gpu-check.sh`` runs these with the rest of ``tests/gpu``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nodes import RunContext
from nodes.artifacts import MemoryArtifactStore
from nodes.library import TorchEmbed, TorchRandomBatch
from orchestrator.gpumemory import TorchMemory
from orchestrator.messages import RunRequest
from orchestrator.results import RunError, RunResult
from workers.gpu.devices import InProcessTorchProbe, TorchProbe, default_probe
from workers.gpu.serving import GpuPlan, GpuServing

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
MB = 2**20


def test_the_probes_find_the_gpus_with_their_memory() -> None:
    found = TorchProbe().devices()
    assert found and all(d.total_mb > 0 and 0 < d.free_mb <= d.total_mb for d in found)
    assert [d.index for d in default_probe().devices()] == [d.index for d in found]
    assert InProcessTorchProbe(torch).devices()[0].name == found[0].name


def test_peak_memory_is_measured_per_run_and_memory_freed_after() -> None:
    memory = TorchMemory()
    torch.zeros(1, device="cuda")  # CUDA started, as a node would
    memory.reset_peak()
    block = torch.empty(256 * MB, dtype=torch.uint8, device="cuda")
    assert (memory.peak_mb() or 0) >= 256
    del block
    memory.free_cache()
    assert torch.cuda.memory_reserved() < 256 * MB
    memory.reset_peak()
    assert (memory.peak_mb() or 0) < 256  # reset: the next run starts from zero


def test_out_of_memory_is_retryable_and_the_process_keeps_serving() -> None:
    device = TorchProbe().devices()[0]
    served = GpuServing(GpuPlan(device), TorchMemory())
    request = RunRequest(
        run_id="j:main:0:big", job_id="j", loop="main", iteration=0, node_id="big",
        type_name="X", gpu=1, vram_mb=1,
    )  # fmt: skip

    def too_big(_: RunRequest) -> RunResult:
        try:
            torch.empty(device.total_mb * 4 * MB, dtype=torch.uint8, device="cuda")
        except torch.OutOfMemoryError as exc:
            return RunResult("j:main:0:big", 1, "failed", error=RunError.of(exc))
        raise AssertionError("allocated four times the device's memory")

    events: list[Any] = []
    failed = served.run(request, too_big, lambda *event: events.append(event))
    assert failed.error is not None and failed.error.type == "GpuOutOfMemory"
    assert failed.error.retryable and f"GPU {device.index}" in failed.error.message
    ok = served.run(request, lambda r: RunResult(r.run_id, 1, "succeeded", outputs={}), print)
    assert ok.status == "succeeded" and events[0][1] == "gpu"


def test_embeddings_on_the_gpu_match_the_cpu() -> None:
    store = MemoryArtifactStore()
    ctx = RunContext.for_run("j", "main", 0, "e", artifacts=store)
    batch = TorchRandomBatch.from_config({"rows": 2000, "features": 32})
    vectors = batch.run(TorchRandomBatch.Inputs(seed=1), ctx).batch

    def embed(device: str) -> Any:
        node = TorchEmbed.from_config({"device": device, "batch_size": 512})
        out = node.run(TorchEmbed.Inputs(batch=vectors), ctx)
        assert out.device == device
        import io

        return np.load(io.BytesIO(store.get(out.embeddings)))

    assert np.allclose(embed("cuda"), embed("cpu"), atol=1e-3)
