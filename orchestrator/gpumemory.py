"""GPU memory as a worker reads it between runs: the torch boundary, and its twin.

:class:`TorchMemory` asks ``torch.cuda`` (imported only once a node imported
torch: a worker never starts CUDA for its own bookkeeping); :class:`FakeMemory`
is the in-package twin tests drive on machines without a GPU.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

MB = 1024 * 1024


class GpuMemory(Protocol):
    """What a GPU worker asks of its device around each run."""

    def reset_peak(self) -> None:
        """Start measuring a run's peak allocation from now."""
        ...

    def peak_mb(self) -> float | None:
        """The peak allocated since :meth:`reset_peak`, in MiB; None without CUDA."""
        ...

    def free_cache(self) -> None:
        """Give cached blocks back to the device (between runs)."""
        ...

    def free_mb(self) -> int | None:
        """Memory free on the device now, in MiB; None while CUDA is not started here."""
        ...

    def is_oom(self, error_type: str) -> bool:
        """Whether a run's error (its exception's class name) is CUDA running out of memory."""
        ...

    def device(self) -> tuple[int, str] | None:
        """The CUDA device this process's runs use (torch's index, name) once a
        node started CUDA here; None before, and on a machine without CUDA."""
        ...


def _started_torch() -> Any | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch


class TorchMemory:
    """``torch.cuda`` memory of this process's one device (``cuda:0`` under
    ``CUDA_VISIBLE_DEVICES``); every call is a no-op until a node started CUDA."""

    def reset_peak(self) -> None:
        torch = _started_torch()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float | None:
        torch = _started_torch()
        if torch is None:
            return None
        return round(float(torch.cuda.max_memory_allocated()) / MB, 1)

    def free_cache(self) -> None:
        torch = _started_torch()
        if torch is not None:
            torch.cuda.empty_cache()

    def free_mb(self) -> int | None:
        torch = _started_torch()
        if torch is None:
            return None
        free, _total = torch.cuda.mem_get_info()
        return int(free) // MB

    def is_oom(self, error_type: str) -> bool:
        # torch.cuda.OutOfMemoryError (an alias of torch.OutOfMemoryError)
        return error_type == "OutOfMemoryError"

    def device(self) -> tuple[int, str] | None:
        torch = _started_torch()
        if torch is None:
            return None
        index = int(torch.cuda.current_device())
        return index, str(torch.cuda.get_device_name(index))


class FakeMemory:
    """A device's memory set by hand: the twin of :class:`TorchMemory`."""

    def __init__(self, free_mb: int | None = None, device: tuple[int, str] | None = None) -> None:
        self.peak: float | None = None
        self.free: int | None = free_mb
        self.cuda = device
        self.resets = 0
        self.frees = 0

    def reset_peak(self) -> None:
        self.resets += 1

    def peak_mb(self) -> float | None:
        return self.peak

    def free_cache(self) -> None:
        self.frees += 1

    def free_mb(self) -> int | None:
        return self.free

    def is_oom(self, error_type: str) -> bool:
        return error_type == "OutOfMemoryError"

    def device(self) -> tuple[int, str] | None:
        return self.cuda
