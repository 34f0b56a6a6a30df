"""The run-time MIME check of artifacts (DESIGN section 6): an artifact whose
actual type is not one its port declares fails the run, not retryable, naming
the port, the declared and the actual type."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from nodes import Artifact, MemoryArtifactStore, Mime, Node, NodeConfig, Ports, RunContext
from nodes.library import builtin_registry
from orchestrator.messages import RunRequest
from orchestrator.runner import NodeRunner


class Paint(Node):
    """Promises an image, but stores its bytes under the configured type."""

    class Config(NodeConfig):
        mime_type: str = "image/png"

    class Outputs(Ports):
        image: Annotated[Artifact, Mime("image/*")]

    config: Config

    def run(self, inputs: Node.Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(image=ctx.artifacts.put(b"\x89PNG", self.config.mime_type))


class Glance(Node):
    """Takes any artifact on an undeclared port (no MIME patterns): never checked."""

    class Inputs(Ports):
        blob: Artifact

    class Outputs(Ports):
        size: int

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(size=inputs.blob.size)


@pytest.fixture
def artifacts() -> MemoryArtifactStore:
    return MemoryArtifactStore()


@pytest.fixture
def runner(artifacts: MemoryArtifactStore) -> NodeRunner:
    registry = builtin_registry().copy()
    registry.register(Paint)
    registry.register(Glance)
    return NodeRunner(registry, artifacts)


def request(node: str, type_name: str, **fields: Any) -> RunRequest:
    return RunRequest(
        run_id=f"j:main:0:{node}",
        job_id="j",
        loop="main",
        iteration=0,
        node_id=node,
        type_name=type_name,
        **fields,
    )


def test_an_artifact_of_another_type_than_its_input_accepts_fails_the_run(
    runner: NodeRunner, artifacts: MemoryArtifactStore
) -> None:
    image = artifacts.put(b"\x89PNG", "image/png")

    result = runner.run(request("text", "ReadText", inputs={"file": image.model_dump()}))

    assert result.status == "failed" and result.error is not None
    assert result.error.type == "ArtifactTypeError"
    assert not result.error.retryable
    assert result.error.message == (
        f"node 'text' (ReadText) input 'file': artifact {image.uri} is image/png, "
        "but the port accepts text/*"
    )


def test_an_artifact_of_an_accepted_type_runs(
    runner: NodeRunner, artifacts: MemoryArtifactStore
) -> None:
    text = artifacts.put(b"hello", "text/plain")

    result = runner.run(request("text", "ReadText", inputs={"file": text.model_dump()}))

    assert (result.status, result.outputs) == ("succeeded", {"text": "hello"})


def test_an_output_artifact_of_another_type_than_its_port_promises_fails_the_run(
    runner: NodeRunner,
) -> None:
    result = runner.run(request("paint", "Paint", config={"mime_type": "text/plain"}))

    assert result.status == "failed" and result.error is not None
    assert result.error.type == "ArtifactTypeError"
    assert "node 'paint' (Paint) output 'image': artifact memory://" in result.error.message
    assert result.error.message.endswith("is text/plain, but the port promises image/*")


def test_an_output_artifact_of_the_promised_type_is_recorded(runner: NodeRunner) -> None:
    result = runner.run(request("paint", "Paint"))

    assert result.status == "succeeded" and result.outputs is not None
    assert result.outputs["image"]["mime_type"] == "image/png"


def test_a_port_that_declares_no_mime_type_takes_any_artifact(
    runner: NodeRunner, artifacts: MemoryArtifactStore
) -> None:
    blob = artifacts.put(b"abc", "application/x-anything")

    result = runner.run(request("glance", "Glance", inputs={"blob": blob.model_dump()}))

    assert (result.status, result.outputs) == ("succeeded", {"size": 3})


def test_the_check_holds_for_async_runs_too(
    runner: NodeRunner, artifacts: MemoryArtifactStore
) -> None:
    import asyncio

    image = artifacts.put(b"\x89PNG", "image/png")

    result = asyncio.run(
        runner.run_async(request("text", "ReadText", inputs={"file": image.model_dump()}))
    )

    assert result.error is not None and result.error.type == "ArtifactTypeError"
