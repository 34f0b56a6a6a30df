"""Batched PyTorch work on tensors passed as artifacts (``application/x-npy``).

``TorchRandomBatch`` makes a seeded batch of vectors; ``TorchEmbed`` embeds a
batch with a small MLP whose weights it builds from a seed (nothing is
downloaded), in ``torch.inference_mode``, chunk by chunk of ``batch_size``
rows, in the configured dtype, on the GPU when there is one. Tensors travel as
NumPy ``.npy`` bytes in the artifact store, so only their references cross
the broker. PyTorch and NumPy are imported when a node runs.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from pydantic import Field

from nodes.artifacts import Artifact, Mime
from nodes.base import Node, NodeConfig, Ports, Resources
from nodes.context import RunContext
from nodes.errors import FatalNodeError
from nodes.library.torch_nodes import import_torch, pick_device

NPY = "application/x-npy"
"""The MIME type of a tensor artifact: NumPy's ``.npy`` format."""

Dtype = Literal["float32", "float16", "bfloat16", "float64"]


def tensor_to_npy(tensor: Any) -> bytes:
    """A tensor as ``.npy`` bytes (moved to the CPU; bfloat16 kept as float32)."""
    import numpy as np

    torch = import_torch("tensor")
    array = tensor.detach().to("cpu")
    if array.dtype == torch.bfloat16:
        array = array.float()
    buffer = io.BytesIO()
    np.save(buffer, array.numpy(), allow_pickle=False)
    return buffer.getvalue()


def npy_to_tensor(data: bytes, node_id: str) -> Any:
    """``.npy`` bytes as a CPU tensor.

    Raises:
        FatalNodeError: The bytes are not a numeric ``.npy`` array of two dimensions.
    """
    import numpy as np

    torch = import_torch(node_id)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise FatalNodeError(f"node {node_id!r}: the batch is not a .npy array ({exc})") from exc
    if array.ndim != 2 or array.dtype.kind not in "fiu":
        raise FatalNodeError(
            f"node {node_id!r}: the batch must be a numeric array of shape (rows, features), "
            f"got {array.dtype} of shape {array.shape}"
        )
    return torch.from_numpy(array)


class TorchRandomBatch(Node):
    """A seeded batch of random vectors, as a ``.npy`` artifact (rows x features)."""

    class Config(NodeConfig):
        rows: int = Field(default=256, ge=1, le=1_000_000, description="Vectors in the batch")
        features: int = Field(default=64, ge=1, le=65536, description="Length of each vector")

    class Inputs(Ports):
        seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the values")

    class Outputs(Ports):
        batch: Annotated[Artifact, Mime(NPY)] = Field(description="float32 (rows, features)")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        torch = import_torch(ctx.node_id)
        generator = torch.Generator().manual_seed(inputs.seed)
        values = torch.randn((self.config.rows, self.config.features), generator=generator)
        return self.Outputs(batch=ctx.artifacts.put(tensor_to_npy(values), NPY))


class TorchEmbed(Node):
    """Embed a batch of vectors with a small MLP whose weights are built from ``seed``.

    Linear → GELU → Linear, then L2-normalised rows: the same seed, config and
    batch give the same embeddings on any device (within the dtype's
    precision). Rows are processed ``batch_size`` at a time in
    ``torch.inference_mode``.
    """

    resources = Resources(gpu=1, vram_mb=256)

    class Config(NodeConfig):
        hidden: int = Field(default=256, ge=1, le=65536, description="Hidden layer width")
        dim: int = Field(default=64, ge=1, le=65536, description="Embedding length")
        seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the weights")
        batch_size: int = Field(default=1024, ge=1, le=1_000_000, description="Rows per step")
        dtype: Dtype = Field(default="float32", description="Element type of the computation")
        device: Literal["auto", "cpu", "cuda"] = Field(
            default="auto", description="Where to compute; auto picks cuda when available"
        )

    class Inputs(Ports):
        batch: Annotated[Artifact, Mime(NPY)] = Field(description="Vectors, (rows, features)")

    class Outputs(Ports):
        embeddings: Annotated[Artifact, Mime(NPY)] = Field(description="float32 (rows, dim)")
        rows: int = Field(description="Vectors embedded")
        device: str = Field(description="The device type that computed them: cpu or cuda")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        torch = import_torch(ctx.node_id)
        device = pick_device(torch, self.config.device, ctx.node_id, "TorchEmbed")
        dtype = getattr(torch, self.config.dtype)
        batch = npy_to_tensor(ctx.artifacts.get(inputs.batch), ctx.node_id)
        model = self._model(torch, batch.shape[1]).to(device=device, dtype=dtype)
        chunks = []
        size = self.config.batch_size
        try:
            with torch.inference_mode():
                for start in range(0, batch.shape[0], size):
                    rows = batch[start : start + size].to(device=device, dtype=dtype)
                    out = torch.nn.functional.normalize(model(rows).float(), dim=1)
                    chunks.append(out.to("cpu"))
                    ctx.progress(min(1.0, (start + size) / batch.shape[0]))
            embeddings = torch.cat(chunks) if chunks else torch.empty((0, self.config.dim))
        finally:
            del model
            chunks.clear()
        data = tensor_to_npy(embeddings)
        return self.Outputs(
            embeddings=ctx.artifacts.put(data, NPY), rows=int(batch.shape[0]), device=device
        )

    def _model(self, torch: Any, features: int) -> Any:
        # Built on the CPU from the seed, so every device starts from the same weights.
        generator = torch.Generator().manual_seed(self.config.seed)
        nn = torch.nn
        model = nn.Sequential(
            nn.Linear(features, self.config.hidden),
            nn.GELU(),
            nn.Linear(self.config.hidden, self.config.dim),
        )
        with torch.no_grad():
            for parameter in model.parameters():
                bound = parameter.shape[-1] ** -0.5
                parameter.copy_(
                    torch.rand(parameter.shape, generator=generator) * 2 * bound - bound
                )
        return model.eval()
