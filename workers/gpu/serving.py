"""One GPU worker process serving its device (DESIGN section 7).

The supervisor (:mod:`workers.gpu.supervisor`) starts this process with
``CUDA_VISIBLE_DEVICES`` naming its one device and the device's facts in
``SEGUE_GPU_DEVICE``. Around each GPU run it waits for admission (one run at a
time, or, with ``--gpu-share``, while the declared ``vram_mb`` fits), measures
the run's peak memory, frees cached memory after it, reports the facts as a
``gpu`` event, and turns CUDA running out of memory into a retryable failure
naming the node, the device and the memory asked for.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.messages import RunRequest
from orchestrator.results import RunError, RunResult
from workers.gpu.admission import VramSemaphore
from workers.gpu.devices import GpuDevice
from workers.gpu.memory import GpuMemory, TorchMemory

DEVICE_ENV = "SEGUE_GPU_DEVICE"
"""The device a GPU worker process serves, as JSON (set by the supervisor)."""
SHARE_RUNS = 8
"""Runs side by side at most on one device with ``--gpu-share`` (the default concurrency)."""
UNLIMITED_MB = 1 << 40
"""What a GPU worker without a device (serving the gpu queue on the CPU) offers."""


@dataclass(frozen=True)
class GpuPlan:
    """How a GPU worker process shares its device.

    Attributes:
        device: The device it serves; None on a machine without GPUs (the
            ``gpu`` queue served on the CPU build).
        share: Several runs side by side while their ``vram_mb`` fits.
        reserve_mb: Memory kept back from admission (CUDA context, fragmentation).
        max_runs: Runs side by side at most when sharing.
    """

    device: GpuDevice | None
    share: bool = False
    reserve_mb: int = 1024
    max_runs: int = SHARE_RUNS

    @property
    def capacity_mb(self) -> int:
        """Memory runs may declare in all."""
        if self.device is None:
            return UNLIMITED_MB
        return max(0, self.device.total_mb - self.reserve_mb)

    @property
    def slots(self) -> int:
        """Runs this process takes at once."""
        return self.max_runs if self.share else 1

    def env(self) -> dict[str, str]:
        """What a worker process serving this plan's device starts with."""
        if self.device is None:
            return {}
        return {
            "CUDA_VISIBLE_DEVICES": str(self.device.index),
            DEVICE_ENV: json.dumps(self.device.to_json()),
        }


def device_from_env() -> GpuDevice | None:
    """The device the supervisor gave this process, if any."""
    text = os.environ.get(DEVICE_ENV)
    if not text:
        return None
    data = json.loads(text)
    return GpuDevice(
        int(data["index"]), str(data["name"]), int(data["total_mb"]), int(data["free_mb"])
    )


@dataclass
class GpuServing:
    """Admission, measurement and failures of the GPU runs of one process."""

    plan: GpuPlan
    memory: GpuMemory = field(default_factory=TorchMemory)

    def __post_init__(self) -> None:
        self.semaphore = VramSemaphore(self.plan.capacity_mb, self.plan.slots)
        self.runs = 0
        self.last_peak_mb: float | None = None

    def announce(self) -> dict[str, Any]:
        """The device as the worker's heartbeat carries it (``info["gpu"]``)."""
        device = self.plan.device
        if device is None:
            return {"device": "cpu", "share": self.plan.share, "runs": self.runs}
        free = self.memory.free_mb()
        return {
            **device.to_json(),
            "free_mb": device.free_mb if free is None else free,
            "usable_mb": self.plan.capacity_mb,
            "share": self.plan.share,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "runs": self.runs,
            "last_peak_mb": self.last_peak_mb,
        }

    def misfit(self, request: RunRequest) -> str | None:
        """Why this device can never run ``request``, or None when it can."""
        if request.vram_mb <= self.plan.capacity_mb:
            return None
        return (
            f"node {request.node_id!r} declares vram_mb {request.vram_mb}, and this GPU "
            f"offers {self.plan.capacity_mb} MiB; it waits for a larger GPU worker"
        )

    def run(
        self,
        request: RunRequest,
        execute: Callable[[RunRequest], RunResult],
        report: Callable[[str, str, object], None],
    ) -> RunResult:
        """Run ``request`` through ``execute`` once admitted; ``report(run_id, kind,
        data)`` receives the run's ``gpu`` event."""
        with self.semaphore.hold(request.vram_mb):
            self.memory.reset_peak()
            started = time.perf_counter()
            try:
                finished = execute(request)
            finally:
                peak = self.last_peak_mb = self.memory.peak_mb()
                self.memory.free_cache()
                self.runs += 1
            seconds = time.perf_counter() - started
        report(request.run_id, "gpu", self.facts(request, peak, seconds))
        error = finished.error
        if error is not None and self.memory.is_oom(error.type):
            finished = finished._replace(error=self._oom(request, error))
        return finished

    def facts(self, request: RunRequest, peak_mb: float | None, seconds: float) -> dict[str, Any]:
        """A GPU run's facts, as its ``gpu`` event and ``segue jobs show`` give them."""
        device = self.plan.device
        return {
            "device": "cpu" if device is None else f"cuda:{device.index}",
            "device_name": "cpu" if device is None else device.name,
            "peak_mb": peak_mb,
            "vram_mb": request.vram_mb,
            "seconds": round(seconds, 4),
        }

    def _oom(self, request: RunRequest, error: RunError) -> RunError:
        device = self.plan.device
        where = "the CPU" if device is None else f"GPU {device.index} ({device.name})"
        asked = f"vram_mb {request.vram_mb}" if request.vram_mb else "no vram_mb declared"
        message = (
            f"node {request.node_id!r} ran out of GPU memory on {where} ({asked}; the device "
            f"has {self.plan.capacity_mb} MiB for runs): {error.message}; it is retried, and "
            f"raising its resources.vram_mb keeps runs that would not fit off a shared GPU"
        )
        return RunError("GpuOutOfMemory", message, True, error.traceback)


_serving: GpuServing | None = None


def configure(serving: GpuServing | None) -> None:
    """Make ``serving`` this process's GPU serving (None: not a GPU worker)."""
    global _serving
    _serving = serving


def current() -> GpuServing | None:
    """This process's GPU serving, when it is a GPU worker."""
    return _serving
