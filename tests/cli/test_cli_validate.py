"""`segue validate`, `segue plan` and `segue nodes types` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
SEGUE = [sys.executable, "-m", "orchestrator.cli"]
runner = CliRunner()

BAD = """\
name: bad
nodes:
  - id: ticks
    type: Range
    config: {stop: 5, step: 0}
  - id: sq
    type: Maht
  - id: a
    type: Math
    config: {op: add}
  - id: b
    type: Math
    config: {op: add}
edges:
  - {from: a.result, to: b.a}
  - {from: b.result, to: a.a}
  - {from: b.result, to: a.b}
  - {from: a.result, to: b.b}
  - {from: a.resul, to: nowhere.x}
"""


def run_segue(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process, as a user's shell would."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SEGUE_DEBUG", None)
    return subprocess.run(
        [*SEGUE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_with_exit_code_zero(example: Path) -> None:
    result = runner.invoke(app, ["validate", str(example)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


ONE_NODE = "name: one\nnodes:\n  - {id: c, type: Constant, config: {value: 1}}\n"
ONE_LOOP = """\
name: one-loop
nodes:
  - {id: ticks, type: Range, config: {stop: 2}}
  - {id: out, type: Output, config: {name: ticks}}
edges:
  - {from: ticks.value, to: out.value}
"""
TWO_LOOPS = """\
name: two-loops
nodes:
  - {id: left, type: Range, config: {stop: 2}}
  - {id: right, type: Range, config: {stop: 2}}
"""


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        (ONE_NODE, "(1 node, 0 loops)"),
        (ONE_LOOP, "(2 nodes, 1 loop)"),
        (TWO_LOOPS, "(2 nodes, 2 loops)"),
    ],
    ids=["one-node", "one-loop", "two-loops"],
)
def test_validate_counts_nodes_and_loops_in_the_singular_and_the_plural(
    tmp_path: Path, text: str, counts: str
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    result = runner.invoke(app, ["validate", str(flow)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"is valid {counts}")


def test_one_fault_is_counted_as_one_problem(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(ONE_NODE.replace("Constant", "Constnat"))
    result = runner.invoke(app, ["validate", str(flow)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"1 problem in {flow}"


def test_validate_json_of_a_valid_file_is_exactly_valid_true_and_no_errors() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES[0]), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == {"valid": True, "errors": []}


def test_an_invalid_file_exits_2_with_every_fault_located_and_no_traceback(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(BAD)
    result = run_segue("validate", str(flow))
    assert result.returncode == 2
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert f"{flow}:5: node 'ticks' (Range): bad config step" in out
    assert f"{flow}:7: node 'sq': unknown node type 'Maht'; did you mean 'Math'" in out
    assert "cycle a -> b -> a has no feedback edge" in out
    assert "`to` node 'nowhere' is not a node of this workflow" in out


def test_validate_json_lists_errors_with_message_node_edge_and_line(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(BAD)
    result = run_segue("validate", str(flow), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert all(set(e) == {"message", "node", "edge", "line"} for e in report["errors"])
    by_node = {e["node"]: e for e in report["errors"] if e["node"]}
    assert by_node["sq"]["line"] == 7
    assert by_node["ticks"]["line"] == 5
    dangling = next(e for e in report["errors"] if e["edge"] == "a.resul -> nowhere.x")
    assert dangling["line"] == 19


def test_malformed_yaml_gets_a_located_parse_error_and_exit_2(tmp_path: Path) -> None:
    flow = tmp_path / "broken.yaml"
    flow.write_text("name: x\nnodes: [\n")
    result = run_segue("validate", str(flow), "--json")
    assert result.returncode == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert error["line"] == 3
    assert "invalid YAML at line 3" in error["message"]


def test_malformed_json_gets_a_located_parse_error(tmp_path: Path) -> None:
    flow = tmp_path / "broken.json"
    flow.write_text('{"name": "x",\n "nodes": [}\n')
    result = runner.invoke(app, ["validate", str(flow), "--json"])
    assert result.exit_code == 2
    (error,) = json.loads(result.output)["errors"]
    assert error["line"] == 2
    assert "invalid JSON at line 2" in error["message"]


def test_a_missing_file_is_named_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    result = run_segue("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: no such workflow file" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_plan_shows_loops_detached_nodes_and_queues() -> None:
    sensor = next(p for p in EXAMPLES if p.name == "sensor.yaml")
    result = runner.invoke(app, ["plan", str(sensor), "--json"])
    assert result.exit_code == 0
    plan = json.loads(result.output)
    ticks = next(loop for loop in plan["loops"] if loop["name"] == "ticks")
    assert [n["id"] for n in ticks["nodes"]] == ["ticks", "square", "total", "out"]
    assert {n["id"] for n in ticks["nodes"] if n["detached"]} == {"square", "total", "out"}
    assert ticks["feedback"] == ["total.result -> total.b"]
    queues = next(p for p in EXAMPLES if p.name == "two-loops-queue.yaml")
    plan = json.loads(runner.invoke(app, ["plan", str(queues), "--json"]).output)
    assert plan["queues"] == [
        {
            "name": "scaled",
            "scope": "job",
            "writers": ["readings/publish"],
            "readers": ["consume/consume"],
        }
    ]


def test_nodes_types_json_lists_every_builtin_with_ports_config_kind_and_resources() -> None:
    result = run_segue("nodes", "types", "--json")
    assert result.returncode == 0
    types = {t["name"]: t for t in json.loads(result.stdout)}
    for name in (
        "Input",
        "Output",
        "Constant",
        "Range",
        "Items",
        "Math",
        "Format",
        "Sleep",
        "Flaky",
        "JsonlSink",
        "QueueWriter",
        "QueueReader",
        "Group",
        "Preview",
        "TorchMatmul",
    ):
        assert name in types
    assert types["Range"]["kind"] == "producer"
    assert types["JsonlSink"]["blocking"] is False
    assert types["TorchMatmul"]["resources"] == {"gpu": 1, "vram_mb": 0}
    assert [p["name"] for p in types["Math"]["inputs"]] == ["a", "b"]
    assert types["Math"]["config_schema"]["properties"]["op"]["enum"] == [
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "mod",
        "min",
        "max",
    ]


def test_nodes_types_table_names_each_type_on_a_terminal() -> None:
    result = runner.invoke(app, ["nodes", "types"])
    assert result.exit_code == 0
    assert "QueueReader" in result.output and "producer" in result.output


def test_nodes_types_for_an_unknown_name_suggests_close_ones_and_exits_2() -> None:
    result = run_segue("nodes", "types", "Maht")
    assert result.returncode == 2
    assert "unknown node type 'Maht'; did you mean 'Math'" in result.stderr
    assert "Traceback" not in result.stderr
