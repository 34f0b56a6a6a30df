"""GPU pools (DESIGN section 7): devices, one process per GPU, VRAM-aware admission."""

from orchestrator.gpumemory import FakeMemory, GpuMemory, TorchMemory
from workers.gpu.admission import Admission, TooLarge, VramSemaphore
from workers.gpu.devices import DeviceProbe, FakeProbe, GpuDevice, NoGpu

__all__ = [
    "Admission",
    "DeviceProbe",
    "FakeMemory",
    "FakeProbe",
    "GpuDevice",
    "GpuMemory",
    "NoGpu",
    "TooLarge",
    "TorchMemory",
    "VramSemaphore",
]
