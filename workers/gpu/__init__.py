"""GPU pools (DESIGN section 7): devices, one process per GPU, VRAM-aware admission."""

from workers.gpu.admission import Admission, TooLarge, VramSemaphore
from workers.gpu.devices import DeviceProbe, FakeProbe, GpuDevice, NoGpu
from workers.gpu.memory import FakeMemory, GpuMemory, TorchMemory

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
