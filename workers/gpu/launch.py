"""What ``segue worker --gpu`` starts: a supervisor of one process per GPU, or,
inside one of those processes (or on a machine without GPUs), the worker itself."""

from __future__ import annotations

import logging
from dataclasses import replace

from workers.bootstrap import WorkerOptions, gpu_plan, run_worker
from workers.gpu.devices import DeviceProbe, default_probe, select
from workers.gpu.serving import GpuPlan, device_from_env
from workers.gpu.supervisor import supervise

log = logging.getLogger("segue.worker.gpu")


def run_gpu_worker(options: WorkerOptions, probe: DeviceProbe | None = None) -> int:
    """Serve the GPUs of this machine; returns the exit code.

    Raises:
        NoGpu: ``--gpus`` names devices this machine does not have, or none was
            found while ``--gpus`` asked for some.
        CudaStartedInParent: This process started CUDA before its children.
    """
    if device_from_env() is not None:  # one of the supervisor's processes
        return run_worker(options)
    found = (probe or default_probe()).devices()
    if not found and options.gpus is None:
        log.warning(
            "no GPU found on this machine: serving the gpu queue on the CPU, in this process"
        )
        return run_worker(options)
    plans = [replace(gpu_plan(options), device=device) for device in select(found, options.gpus)]
    return supervise(plans, lambda i, plan: child_args(options, i, plan))


def child_args(options: WorkerOptions, i: int, plan: GpuPlan) -> list[str]:
    """The ``segue worker`` arguments of the ``i``-th GPU worker process."""
    args = ["--gpu", "--gpu-reserve-mb", str(plan.reserve_mb)]
    if options.queues:
        args += ["--queues", ",".join(options.queues)]
    if options.concurrency:
        args += ["--concurrency", str(options.concurrency)]
    if options.gpu_share:
        args.append("--gpu-share")
    if options.metrics_port:
        args += ["--metrics-port", str(options.metrics_port + i)]  # one port per process
    return args
