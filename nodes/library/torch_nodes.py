"""GPU nodes built on PyTorch, an optional dependency (``pip install 'segue[gpu]'``).

PyTorch is imported when a node runs, never when this module is imported, so
the library loads and registers these types on machines without it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nodes.base import Node, NodeConfig, Ports, Resources
from nodes.context import RunContext
from nodes.errors import FatalNodeError


def import_torch(node_id: str) -> Any:
    """PyTorch, imported now.

    Raises:
        FatalNodeError: PyTorch is not installed on this worker.
    """
    try:
        import torch
    except ImportError as exc:
        raise FatalNodeError(
            f"node {node_id!r} needs PyTorch, which is not installed "
            f"on this worker; install it with `pip install 'segue[gpu]'`"
        ) from exc
    return torch


def pick_device(torch: Any, wanted: str, node_id: str, type_name: str) -> str:
    """``cuda`` or ``cpu`` for a node's ``device`` config (``auto``: cuda when available).

    Raises:
        FatalNodeError: ``cuda`` is asked for on a worker without a CUDA device.
    """
    available = bool(torch.cuda.is_available())
    if wanted == "cuda" and not available:
        raise FatalNodeError(
            f"node {node_id!r} ({type_name}) asks for device 'cuda', but this worker "
            f"has no CUDA device; use device 'auto' or 'cpu', or run a GPU worker"
        )
    if wanted == "auto":
        return "cuda" if available else "cpu"
    return wanted


class TorchMatmul(Node):
    """Multiply two seeded random square matrices and report a checksum.

    A GPU smoke test and benchmark: the same seed, size, dtype and device give
    the same checksum (the sum of the product, computed in float64). With
    ``device: auto`` the run uses CUDA when it is available, else the CPU. GPU
    memory is released when the run ends.
    """

    resources = Resources(gpu=1)

    class Config(NodeConfig):
        size: int = Field(
            default=256, ge=1, le=16384, description="Rows and columns of each matrix"
        )
        dtype: Literal["float32", "float16", "bfloat16", "float64"] = Field(
            default="float32", description="Element type of the matrices"
        )
        device: Literal["auto", "cpu", "cuda"] = Field(
            default="auto", description="Where to compute; auto picks cuda when available"
        )

    class Inputs(Ports):
        seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the random matrices")

    class Outputs(Ports):
        checksum: float = Field(description="Sum of the product's elements, in float64")
        device: str = Field(description="The device type that computed it: cpu or cuda")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        torch = import_torch(ctx.node_id)
        device = pick_device(torch, self.config.device, ctx.node_id, "TorchMatmul")
        dtype = getattr(torch, self.config.dtype)
        size = self.config.size
        generator = torch.Generator(device=device)
        generator.manual_seed(inputs.seed)
        tensors: list[Any] = []
        try:
            for _ in range(2):
                tensors.append(
                    torch.rand((size, size), generator=generator, device=device, dtype=dtype)
                )
            tensors.append(tensors[0] @ tensors[1])
            checksum = float(tensors[-1].sum(dtype=torch.float64).item())
        finally:
            tensors.clear()
            if device == "cuda":
                torch.cuda.empty_cache()
        ctx.progress(1.0, f"{size}x{size} {self.config.dtype} matmul on {device}")
        return self.Outputs(checksum=checksum, device=device)
