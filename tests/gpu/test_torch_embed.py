"""TorchEmbed: batched MLP embeddings of tensors passed as artifacts, on the CPU build."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from nodes import RunContext
from nodes.artifacts import MemoryArtifactStore
from nodes.errors import FatalNodeError
from nodes.library import TorchEmbed, TorchRandomBatch
from nodes.library.torch_embed import NPY
from orchestrator import Client, WorkflowBuilder

STORE = MemoryArtifactStore()


def context() -> RunContext:
    return RunContext.for_run("job1", "main", 0, "embed", artifacts=STORE)


def embed(batch: Any, **config: Any) -> Any:
    node = TorchEmbed.from_config(config)
    return node.run(TorchEmbed.Inputs(batch=batch), context())


def array(artifact: Any) -> Any:
    return np.load(io.BytesIO(STORE.get(artifact)), allow_pickle=False)


def batch(rows: int = 50, features: int = 16, seed: int = 3) -> Any:
    node = TorchRandomBatch.from_config({"rows": rows, "features": features})
    return node.run(TorchRandomBatch.Inputs(seed=seed), context()).batch


def test_embeddings_are_unit_rows_of_the_configured_length() -> None:
    out = embed(batch(), dim=8, hidden=32, device="cpu")
    values = array(out.embeddings)
    assert out.rows == 50 and out.device == "cpu" and out.embeddings.mime_type == NPY
    assert values.shape == (50, 8) and values.dtype == np.float32
    assert np.allclose(np.linalg.norm(values, axis=1), 1.0, atol=1e-5)


def test_the_batch_size_changes_the_steps_not_the_embeddings() -> None:
    whole = array(embed(batch(), dim=8, batch_size=1024).embeddings)
    stepped = array(embed(batch(), dim=8, batch_size=7).embeddings)
    assert np.allclose(whole, stepped, atol=1e-6)


def test_the_seed_builds_the_weights_and_the_dtype_keeps_the_result_close() -> None:
    first = array(embed(batch(), seed=1).embeddings)
    assert np.array_equal(first, array(embed(batch(), seed=1).embeddings))
    assert not np.allclose(first, array(embed(batch(), seed=2).embeddings))
    low = array(embed(batch(), seed=1, dtype="bfloat16").embeddings)
    assert np.allclose(first, low, atol=0.05)


def test_a_batch_that_is_not_a_matrix_is_a_fatal_error_naming_the_node() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(5, dtype=np.float32))
    vector = STORE.put(buffer.getvalue(), NPY)
    with pytest.raises(FatalNodeError, match=r"node 'embed'.*shape \(rows, features\)"):
        embed(vector)


def test_cuda_asked_for_on_a_cpu_worker_is_a_fatal_error() -> None:
    with pytest.raises(FatalNodeError, match="asks for device 'cuda'"):
        embed(batch(), device="cuda")


def test_a_workflow_embeds_a_batch_end_to_end_in_the_embedded_engine(tmp_path: Any) -> None:
    b = WorkflowBuilder("embed")
    vectors = b.node("vectors", "TorchRandomBatch", config={"rows": 300, "features": 12})
    emb = b.node(
        "emb", "TorchEmbed", config={"dim": 4, "batch_size": 64}, resources={"vram_mb": 512}
    )
    b.edge(vectors["batch"], emb["batch"])
    out = b.node("rows", "Output", config={"name": "rows"})
    b.edge(emb["rows"], out["value"])
    with Client.embedded(home=tmp_path) as client:
        result = client.submit(b.build()).wait(60)
    assert result.status == "completed", result.error
    assert result.outputs["rows"] == 300
