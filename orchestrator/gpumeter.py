"""Measuring GPU runs, the same in a GPU worker process and in an embedded engine.

Around each GPU run a :class:`GpuMeter` resets the device's peak statistics,
reads the run's peak memory after it (through the :mod:`~orchestrator.gpumemory`
boundary), frees cached memory, and gives the run's facts (device, peak, the
declared ``vram_mb``, seconds) for its ``gpu`` event; CUDA running out of memory
becomes a retryable failure naming the node, the device and the memory asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from orchestrator.gpumemory import GpuMemory, TorchMemory
from orchestrator.results import RunError, RunResult
from orchestrator.runner.spec import RunSpec


class GpuRunSpec(RunSpec, Protocol):
    """A run as the meter reads it: the runner's spec and the memory it declares."""

    @property
    def vram_mb(self) -> int: ...


S = TypeVar("S", bound=GpuRunSpec)


@dataclass
class GpuMeter:
    """Measures the GPU runs of one process.

    Attributes:
        memory: The device boundary (torch, or its twin in tests).
        device: The device a GPU worker process serves (index on its machine,
            name); None where runs use whatever CUDA device they start (asked of
            ``memory`` after each run), or the CPU.
        offers_mb: Memory runs may declare in all (named in out-of-memory
            failures; None: not known, as in an embedded engine).
    """

    memory: GpuMemory = field(default_factory=TorchMemory)
    device: tuple[int, str] | None = None
    offers_mb: int | None = None
    runs: int = 0
    last_peak_mb: float | None = None

    def measure(
        self, spec: S, execute: Callable[[S], RunResult]
    ) -> tuple[RunResult, dict[str, Any]]:
        """Run ``spec`` through ``execute``; returns its result (an out-of-memory
        failure made clear and retryable) and its facts, for a ``gpu`` event."""
        self.memory.reset_peak()
        started = time.perf_counter()
        try:
            finished = execute(spec)
        finally:
            peak = self.last_peak_mb = self.memory.peak_mb()
            self.memory.free_cache()
            self.runs += 1
        facts = self.facts(spec, peak, time.perf_counter() - started)
        error = finished.error
        if error is not None and self.memory.is_oom(error.type):
            finished = finished._replace(error=self._oom(spec, error))
        return finished, facts

    def used(self) -> tuple[int, str] | None:
        """The CUDA device runs here use, as far as known now; None: the CPU."""
        return self.device if self.device is not None else self.memory.device()

    def facts(self, spec: GpuRunSpec, peak_mb: float | None, seconds: float) -> dict[str, Any]:
        """A GPU run's facts, as its ``gpu`` event and ``segue jobs show`` give them."""
        used = self.used()
        return {
            "device": "cpu" if used is None else f"cuda:{used[0]}",
            "device_name": "cpu" if used is None else used[1],
            "peak_mb": peak_mb,
            "vram_mb": spec.vram_mb,
            "seconds": round(seconds, 4),
        }

    def announce(self) -> dict[str, Any]:
        """The runs measured here, as a heartbeat's ``info["gpu"]`` carries them
        (with the device's ``index`` and ``name`` once runs used a CUDA device)."""
        used = self.used()
        where: dict[str, Any] = (
            {"device": "cpu"} if used is None else {"index": used[0], "name": used[1]}
        )
        return {**where, "runs": self.runs, "last_peak_mb": self.last_peak_mb}

    def _oom(self, spec: GpuRunSpec, error: RunError) -> RunError:
        used = self.used()
        where = "the CPU" if used is None else f"GPU {used[0]} ({used[1]})"
        asked = f"vram_mb {spec.vram_mb}" if spec.vram_mb else "no vram_mb declared"
        offers = "" if self.offers_mb is None else f"; the device has {self.offers_mb} MiB for runs"
        message = (
            f"node {spec.node_id!r} ran out of GPU memory on {where} ({asked}{offers}): "
            f"{error.message}; it is retried, and raising its resources.vram_mb keeps runs "
            f"that would not fit off a shared GPU"
        )
        return RunError("GpuOutOfMemory", message, True, error.traceback)
