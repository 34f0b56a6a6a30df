"""Resources(gpu=1, vram_mb=N) on node types, raisable per workflow node, validated."""

from __future__ import annotations

import pytest

from nodes import Node, NodeDefinitionError, Ports, Resources
from nodes.base import check_node_class
from nodes.library import builtin_registry
from orchestrator.model import Workflow
from orchestrator.planner import compile_workflow
from orchestrator.validation import validate


class Embed(Node):
    """A GPU node that declares the memory its runs use."""

    resources = Resources(gpu=1, vram_mb=2048)

    class Outputs(Ports):
        done: bool

    def run(self, inputs: Ports, ctx: object) -> Outputs:
        return self.Outputs(done=True)


REGISTRY = builtin_registry().copy()
REGISTRY.register(Embed)


def flow(resources: str, node_type: str = "Embed") -> str:
    return f"name: f\nnodes:\n  - id: e\n    type: {node_type}\n{resources}"


def test_a_workflow_node_raises_its_types_vram_and_the_run_request_carries_it() -> None:
    workflow = Workflow.loads(flow("    resources: {vram_mb: 6000}\n"), source="f.yaml")
    assert validate(workflow, REGISTRY) == []
    planned = compile_workflow(workflow, REGISTRY).nodes["e"]
    assert planned.route.queue == "gpu" and planned.route.vram_mb == 6000


def test_without_resources_a_node_runs_with_its_types_declaration() -> None:
    workflow = Workflow.loads(flow(""), source="f.yaml")
    assert compile_workflow(workflow, REGISTRY).nodes["e"].route.vram_mb == 2048


def test_lowering_the_types_vram_is_refused_on_the_resources_line() -> None:
    text = flow("    resources: {vram_mb: 100}\n")
    (issue,) = validate(Workflow.loads(text, source="f.yaml"), REGISTRY)
    assert issue.node == "e" and issue.line == 5
    assert "resources.vram_mb 100 is below the 2048 MiB its type declares" in issue.message


def test_vram_on_a_node_that_runs_on_no_gpu_is_refused() -> None:
    text = flow("    config: {value: 1}\n    resources: {vram_mb: 100}\n", "Constant")
    (issue,) = validate(Workflow.loads(text, source="f.yaml"), REGISTRY)
    assert issue.node == "e" and "runs on no GPU" in issue.message


def test_a_type_declaring_vram_without_a_gpu_is_refused() -> None:
    class Bad(Node):
        resources = Resources(vram_mb=10)

        class Outputs(Ports):
            x: int

        def run(self, inputs: Ports, ctx: object) -> Outputs:
            return self.Outputs(x=1)

    with pytest.raises(NodeDefinitionError, match=r"vram_mb .* needs gpu >= 1"):
        check_node_class(Bad)
