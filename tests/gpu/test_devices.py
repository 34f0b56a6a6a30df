"""Finding GPUs through the device probe, and choosing among them with --gpus."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from workers.gpu.devices import (
    FakeProbe,
    GpuDevice,
    NoGpu,
    NvmlProbe,
    parse_selection,
    select,
)

A100 = GpuDevice(0, "NVIDIA A100-SXM4-40GB", 40960, 40000)
L4 = GpuDevice(1, "NVIDIA L4", 23034, 22000)
H100 = GpuDevice(2, "NVIDIA H100 80GB HBM3", 81559, 80000)


def test_gpus_picks_the_devices_named_in_the_order_given() -> None:
    found = FakeProbe([A100, L4, H100]).devices()
    assert select(found, parse_selection("2,0")) == [H100, A100]
    assert select(found, None) == [A100, L4, H100]


def test_a_device_that_does_not_exist_is_named_with_those_that_do() -> None:
    with pytest.raises(NoGpu, match=r"\[5\].*has 0, 1"):
        select(FakeProbe([A100, L4]).devices(), parse_selection("0,5"))


def test_a_machine_without_gpus_says_so() -> None:
    with pytest.raises(NoGpu, match="no GPU found"):
        select(FakeProbe([]).devices(), None)


def test_a_selection_that_is_not_a_list_of_indexes_is_refused() -> None:
    with pytest.raises(NoGpu, match=r"'x' is not a device index"):
        parse_selection("0,x")


def test_the_fake_probe_reports_free_memory_as_it_is_used() -> None:
    probe = FakeProbe([A100])
    probe.used_mb[0] = 1000
    assert probe.devices()[0].free_mb == 39000


class FakeNvml:
    """The few ``pynvml`` calls the NVML probe makes, answering for given devices."""

    class NVMLError(Exception):
        pass

    def __init__(self, devices: list[GpuDevice], starts: bool = True) -> None:
        self.devices = devices
        self.starts = starts
        self.open = False

    def nvmlInit(self) -> None:
        if not self.starts:
            raise self.NVMLError("NVML Shared Library Not Found")
        self.open = True

    def nvmlShutdown(self) -> None:
        self.open = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> GpuDevice:
        return self.devices[index]

    def nvmlDeviceGetName(self, handle: GpuDevice) -> bytes:
        return handle.name.encode()

    def nvmlDeviceGetMemoryInfo(self, handle: GpuDevice) -> Any:
        return SimpleNamespace(total=handle.total_mb * 2**20, free=handle.free_mb * 2**20)


def test_nvml_reports_every_device_with_its_memory_and_closes_after() -> None:
    nvml = FakeNvml([A100, L4])
    assert NvmlProbe(nvml).devices() == [A100, L4]
    assert not nvml.open


def test_without_an_nvidia_driver_the_fallback_probe_answers() -> None:
    fallback = FakeProbe([H100])
    assert NvmlProbe(FakeNvml([], starts=False), fallback=fallback).devices() == [H100]
    assert NvmlProbe(FakeNvml([], starts=False)).devices() == []


def test_cuda_visible_devices_narrows_what_nvml_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert NvmlProbe(FakeNvml([A100, L4, H100])).devices() == [H100, A100]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1e2f")  # by UUID: not narrowed here
    assert len(NvmlProbe(FakeNvml([A100, L4])).devices()) == 2
