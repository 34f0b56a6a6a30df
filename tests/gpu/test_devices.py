"""Finding GPUs through the device probe, and choosing among them with --gpus."""

from __future__ import annotations

import pytest

from workers.gpu.devices import FakeProbe, GpuDevice, NoGpu, parse_selection, select

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
