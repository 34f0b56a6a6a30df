"""A live stream never joins two GPU nodes: the planner accumulates it instead,
so a GPU that takes one run at a time (a GPU worker without --gpu-share, the
embedded engine's GPU thread) never waits on itself, and the plan says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nodes import Resources
from nodes.library import Join, Tokens, builtin_registry
from nodes.registry import NodeRegistry
from orchestrator import Client, WorkflowBuilder
from orchestrator.cli import app, validate
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow


class GpuTokens(Tokens):
    """Tokens, on a GPU."""

    resources = Resources(gpu=1)


class GpuJoin(Join):
    """Join, on a GPU."""

    resources = Resources(gpu=1)


def registry() -> NodeRegistry:
    found = builtin_registry()
    found.register(GpuTokens)
    found.register(GpuJoin)
    return found


PORTS = {"Tokens": ("text", "token"), "Take": ("items", "items"), "Join": ("tokens", "text")}


TEXT = " ".join(f"w{i}" for i in range(500))
"""More tokens than a live stream buffers (64 chunks ahead in-process, 128 in a
cluster): a producer that cannot run beside its consumer blocks."""


def chain(*types: str) -> Workflow:
    """A text streamed through ``types`` in a row (a Tokens first, a Join last)."""
    b = WorkflowBuilder("chain")
    b.node("text", "Constant", config={"value": TEXT})
    previous, out = "text", "value"
    for i, node_type in enumerate(types):
        into, next_out = PORTS[node_type.removeprefix("Gpu")]
        b.edge(f"{previous}.{out}", f"n{i}.{into}")
        b.node(f"n{i}", node_type)
        previous, out = f"n{i}", next_out
    b.node("out", "Output", config={"name": "text"})
    b.edge(f"{previous}.{out}", "out.value")
    return b.build()


def live_edges(plan: Plan) -> list[tuple[str, str]]:
    return [
        (binding.source, node.id)
        for node in plan.nodes.values()
        for binding in node.inputs
        if binding.stream
    ]


def test_a_stream_between_two_gpu_nodes_is_accumulated_and_the_plan_says_why() -> None:
    plan = compile_workflow(chain("GpuTokens", "GpuJoin"), registry())
    assert live_edges(plan) == []
    assert plan.notes == {
        "n1": "stream input 'tokens' of 'n1' reads the accumulated stream of 'n0' (not live): "
        "live streams would run two GPU nodes side by side, and a GPU worker taking one run "
        "at a time could never admit the second"
    }
    assert plan.to_json()["notes"] == dict(plan.notes)


def test_a_stream_with_one_gpu_node_stays_live() -> None:
    for types in (("GpuTokens", "Join"), ("Tokens", "GpuJoin"), ("Tokens", "Take", "Join")):
        plan = compile_workflow(chain(*types), registry())
        assert len(live_edges(plan)) == len(types) - 1, types
        assert plan.notes == {}


def test_two_gpu_nodes_joined_through_a_cpu_node_keep_only_the_first_live_edge() -> None:
    plan = compile_workflow(chain("GpuTokens", "Take", "GpuJoin"), registry())
    assert live_edges(plan) == [("n0", "n1")]  # the GPU producer still streams to Take
    assert list(plan.notes) == ["n2"]
    assert plan.nodes["n0"].streams == (("token", "n1"),)
    assert plan.nodes["n1"].streams == ()


def test_a_gpu_to_gpu_stream_completes_on_the_embedded_engines_one_gpu_thread(
    tmp_path: Path,
) -> None:
    # Live, the consumer would wait on the one GPU thread behind its producer,
    # which waits for it to read: the job would never end.
    with Client.embedded(tmp_path, registry=registry()) as client:
        job = client.submit(chain("GpuTokens", "GpuJoin"))
        result = job.wait(30)
    assert result.status == "completed"
    assert result.outputs == {"text": TEXT}


def test_segue_plan_shows_why_a_gpu_stream_is_accumulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "default_registry", registry)
    path = tmp_path / "gpu-stream.yaml"
    path.write_text(
        """
name: gpu-stream
nodes:
  - {id: text, type: Constant, config: {value: "a b"}}
  - {id: gen, type: GpuTokens}
  - {id: join, type: GpuJoin}
edges:
  - {from: text.value, to: gen.text}
  - {from: gen.token, to: join.tokens}
"""
    )
    shown = CliRunner().invoke(app, ["plan", str(path)], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    assert "planned join: stream input 'tokens' of 'join' reads the accumulated stream" in (
        " ".join(shown.output.split())
    )
    as_json = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert list(json.loads(as_json.output)["notes"]) == ["join"]
