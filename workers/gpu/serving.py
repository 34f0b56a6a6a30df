"""One GPU worker process serving its device (DESIGN section 7).

The supervisor (:mod:`workers.gpu.supervisor`) starts this process with
``CUDA_VISIBLE_DEVICES`` naming its one device and the device's facts in
``SEGUE_GPU_DEVICE``. Around each GPU run it waits for admission (one run at a
time, or, with ``--gpu-share``, while the declared ``vram_mb`` fits); the
:class:`~orchestrator.gpumeter.GpuMeter` an embedded engine uses too measures
the run's peak memory, frees cached memory after it and makes CUDA running out
of memory a clear, retryable failure; the facts are reported as a ``gpu`` event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.gpufacts import GPU_EVENT
from orchestrator.gpumemory import GpuMemory, TorchMemory
from orchestrator.gpumeter import GpuMeter
from orchestrator.messages import RunRequest
from orchestrator.results import RunResult
from workers.gpu.admission import VramSemaphore
from workers.gpu.devices import GpuDevice

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
        device = self.plan.device
        self.meter = GpuMeter(
            self.memory,
            None if device is None else (device.index, device.name),
            None if device is None else self.plan.capacity_mb,
        )

    @property
    def runs(self) -> int:
        """GPU runs this process ran."""
        return self.meter.runs

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
            "last_peak_mb": self.meter.last_peak_mb,
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
            finished, facts = self.meter.measure(request, execute)
        report(request.run_id, GPU_EVENT, facts)
        return finished


_serving: GpuServing | None = None


def configure(serving: GpuServing | None) -> None:
    """Make ``serving`` this process's GPU serving (None: not a GPU worker)."""
    global _serving
    _serving = serving


def current() -> GpuServing | None:
    """This process's GPU serving, when it is a GPU worker."""
    return _serving
