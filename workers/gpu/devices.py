"""Which GPUs a machine has, asked without starting CUDA in this process.

The device boundary is a small protocol, :class:`DeviceProbe`, with three
implementations: NVML (``nvidia-ml-py``, when installed: it reads the driver
and creates no CUDA context), torch in a child process (a parent that later
starts one worker process per GPU must never initialise CUDA itself), and
:class:`FakeProbe`, the in-package twin tests use in place of a real GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

MB = 1024 * 1024


class NoGpu(Exception):
    """No GPU could be found, or the chosen ones do not exist; the message says which."""


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as its worker announces it.

    Attributes:
        index: The device's index on its machine (what ``CUDA_VISIBLE_DEVICES`` names).
        name: The device's product name.
        total_mb: Its memory, in MiB.
        free_mb: Memory free when it was last asked, in MiB.
    """

    index: int
    name: str
    total_mb: int
    free_mb: int

    def to_json(self) -> dict[str, Any]:
        """The device as the heartbeat's ``gpu`` info carries it."""
        return asdict(self)


def visible_indexes() -> list[int] | None:
    """The device indexes ``CUDA_VISIBLE_DEVICES`` lets this process use, in its
    order; None when it is unset or names devices by UUID (then every device
    NVML lists is taken, and torch's own numbering)."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not all(item.isdigit() for item in items):
        return None
    return [int(item) for item in items]


class DeviceProbe(Protocol):
    """Lists the GPUs of this machine, or, inside a GPU worker, its own."""

    def devices(self) -> list[GpuDevice]:
        """Every GPU visible to this process, memory as of now."""
        ...


class NvmlProbe:
    """GPUs as the NVIDIA driver reports them (``pynvml`` from ``nvidia-ml-py``).

    Where NVML cannot start (no NVIDIA driver, or its library missing), the
    ``fallback`` probe answers instead."""

    def __init__(self, nvml: Any, fallback: DeviceProbe | None = None) -> None:
        self._nvml = nvml
        self._fallback = fallback

    def devices(self) -> list[GpuDevice]:
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError:
            return self._fallback.devices() if self._fallback is not None else []
        try:
            found = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                name = nvml.nvmlDeviceGetName(handle)
                found.append(
                    GpuDevice(
                        index,
                        name.decode() if isinstance(name, bytes) else str(name),
                        int(memory.total) // MB,
                        int(memory.free) // MB,
                    )
                )
        finally:
            nvml.nvmlShutdown()
        visible = visible_indexes()  # NVML lists every device; a set variable narrows them
        if visible is None:
            return found
        by_index = {d.index: d for d in found}
        return [by_index[i] for i in visible if i in by_index]


_TORCH_LISTING = """
import json, torch
found = []
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        found.append([i, torch.cuda.get_device_name(i), total // 2**20, free // 2**20])
print(json.dumps(found))
"""


class TorchProbe:
    """GPUs as torch sees them, asked in a child process so that CUDA starts there."""

    def __init__(self, python: str = sys.executable, timeout_s: float = 120.0) -> None:
        self._python = python
        self._timeout_s = timeout_s

    def devices(self) -> list[GpuDevice]:
        try:
            done = subprocess.run(
                [self._python, "-c", _TORCH_LISTING],
                capture_output=True,
                text=True,
                timeout=self._timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NoGpu(f"could not ask torch for GPUs: {exc}") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise NoGpu(f"could not ask torch for GPUs: {last}")
        # torch numbers the devices CUDA_VISIBLE_DEVICES lets it see from 0: the
        # device's index on the machine is the variable's entry at that place.
        visible = visible_indexes()
        return [
            GpuDevice(visible[int(i)] if visible else int(i), str(n), int(t), int(f))
            for i, n, t, f in json.loads(done.stdout)
        ]


class InProcessTorchProbe:
    """The GPU of a worker process that already serves it (CUDA may start here)."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch

    def devices(self) -> list[GpuDevice]:
        cuda = self._torch.cuda
        if not cuda.is_available():
            return []
        found = []
        for i in range(cuda.device_count()):
            free, total = cuda.mem_get_info(i)
            found.append(GpuDevice(i, str(cuda.get_device_name(i)), total // MB, free // MB))
        return found


class FakeProbe:
    """GPUs given in advance: the twin of the real probes, for tests and CPU-only runs.

    ``used_mb`` may be changed between calls to move the free memory reported."""

    def __init__(self, devices: Sequence[GpuDevice]) -> None:
        self._devices = list(devices)
        self.used_mb: dict[int, int] = {}
        self.calls = 0

    def devices(self) -> list[GpuDevice]:
        self.calls += 1
        return [
            replace(d, free_mb=max(0, d.free_mb - self.used_mb.get(d.index, 0)))
            for d in self._devices
        ]


FAKE_GPUS_ENV = "SEGUE_FAKE_GPUS"
"""Devices to pretend this machine has, as a JSON list of ``GpuDevice`` objects: how
tests start real GPU worker processes on machines without a GPU."""


def default_probe() -> DeviceProbe:
    """NVML when ``nvidia-ml-py`` is installed, else torch in a child process
    (``SEGUE_FAKE_GPUS``, when set: the devices it lists)."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake:
        return FakeProbe([GpuDevice(**item) for item in json.loads(fake)])
    try:
        import pynvml
    except ImportError:
        return TorchProbe()
    return NvmlProbe(pynvml, fallback=TorchProbe())


def parse_selection(text: str) -> tuple[int, ...]:
    """``--gpus 0,2`` as device indexes.

    Raises:
        NoGpu: ``text`` is not a comma-separated list of device indexes.
    """
    picked: list[int] = []
    for part in text.split(","):
        item = part.strip()
        if not item.isdigit():
            raise NoGpu(f"--gpus {text!r}: {item!r} is not a device index; write e.g. --gpus 0,2")
        if int(item) not in picked:
            picked.append(int(item))
    return tuple(picked)


def select(found: Sequence[GpuDevice], wanted: Sequence[int] | None) -> list[GpuDevice]:
    """The devices ``wanted`` (all when None), in the order asked.

    Raises:
        NoGpu: No GPU was found, or one asked for does not exist.
    """
    if not found:
        raise NoGpu(
            "no GPU found on this machine (neither NVML nor torch sees one); "
            "run `segue worker` without --gpu, or install the GPU driver"
        )
    if wanted is None:
        return list(found)
    by_index = {d.index: d for d in found}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        have = ", ".join(str(d.index) for d in found)
        raise NoGpu(f"--gpus names device(s) {missing} that do not exist; this machine has {have}")
    return [by_index[i] for i in wanted]
