"""The GPU supervisor never starts CUDA itself and refuses to start children after
anything in its process did (a CUDA context must not cross into a child)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.bootstrap import WorkerOptions
from workers.gpu.devices import GpuDevice
from workers.gpu.launch import child_args
from workers.gpu.serving import GpuPlan
from workers.gpu.supervisor import CudaStartedInParent, supervise

A = GpuDevice(0, "Fake GPU A", 4096, 4000)


def test_a_parent_that_started_cuda_refuses_to_start_gpu_worker_processes() -> None:
    started: list[int] = []

    def args(i: int, plan: GpuPlan) -> list[str]:
        started.append(i)
        return ["--gpu"]

    with pytest.raises(CudaStartedInParent, match="must not start children after that"):
        supervise([GpuPlan(A)], args, cuda_check=lambda: True)
    assert started == []


def test_finding_gpus_and_starting_the_supervisor_never_imports_torch_here() -> None:
    # Without NVML the probe asks torch in a child process: this one stays clean.
    code = (
        "import sys, orchestrator.cli, workers.gpu.launch\n"
        "from workers.gpu.devices import default_probe\n"
        "from workers.gpu.supervisor import cuda_started\n"
        "default_probe().devices()\n"
        "print('torch' in sys.modules, cuda_started())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_each_worker_process_gets_its_options_and_a_metrics_port_of_its_own() -> None:
    options = WorkerOptions(gpu=True, queues=("gpu", "big"), gpu_share=True, metrics_port=9300)
    plan = GpuPlan(A, share=True, reserve_mb=512)
    assert child_args(options, 2, plan) == [
        "--gpu",
        "--gpu-reserve-mb",
        "512",
        "--queues",
        "gpu,big",
        "--gpu-share",
        "--metrics-port",
        "9302",
    ]
