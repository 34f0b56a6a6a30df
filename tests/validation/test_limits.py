"""Workflow files over a limit are refused, located and naming the limit, never with a
traceback: nesting, integer digits, numbers that are not finite, node and edge
counts, file size (orchestrator/model/limits.py)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from nodes.library import builtin_registry
from orchestrator.errors import WorkflowParseError
from orchestrator.model import Workflow
from orchestrator.model import limits as model_limits
from orchestrator.model import source as source_module
from orchestrator.model.limits import (
    MAX_EDGES,
    MAX_FILE_BYTES,
    MAX_GROUP_DEPTH,
    MAX_INT_DIGITS,
    MAX_NESTING_DEPTH,
    MAX_NODES,
    find_problem,
)
from orchestrator.validation import Limits, validate

BUILTINS = builtin_registry()


def refusal(text: str, source: str) -> WorkflowParseError:
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.loads(text, source=source)
    return caught.value


def constant(value: str) -> str:
    node = f'{{"id": "c", "type": "Constant", "config": {{"value": {value}}}}}'
    return f'{{"name": "x", "nodes": [{node}]}}'


LEAF = json.dumps(
    {
        "name": "leaf",
        "nodes": [
            {"id": "i", "type": "Input", "config": {"name": "item"}},
            {"id": "o", "type": "Output", "config": {"name": "result"}},
        ],
        "edges": [{"from": "i.value", "to": "o.value"}],
    }
)
GROUP_OPEN = (
    '{"name": "level", "nodes": ['
    '{"id": "i", "type": "Input", "config": {"name": "item", "default": []}}, '
    '{"id": "g", "type": "Group", "config": {"workflow": '
)
GROUP_CLOSE = (
    '}}, {"id": "o", "type": "Output", "config": {"name": "result"}}], '
    '"edges": [{"from": "i.value", "to": "g.items"}, {"from": "g.results", "to": "o.value"}]}'
)


def groups(depth: int) -> str:
    """JSON of a workflow whose Group runs a workflow whose Group runs … ``depth`` levels
    down (written as text: ``json.dumps`` itself would recurse too deep)."""
    return GROUP_OPEN * depth + LEAF + GROUP_CLOSE * depth


def test_the_limits_are_the_documented_numbers() -> None:
    assert (MAX_FILE_BYTES, MAX_NODES, MAX_EDGES) == (5 * 1024 * 1024, 10_000, 100_000)
    assert (MAX_GROUP_DEPTH, MAX_NESTING_DEPTH, MAX_INT_DIGITS) == (8, 100, 4_300)
    assert Limits() == Limits(max_nodes=MAX_NODES, max_edges=MAX_EDGES, max_depth=MAX_GROUP_DEPTH)


# nesting ----------------------------------------------------------------------------
def test_json_nested_5000_deep_is_refused_naming_the_depth_limit() -> None:
    error = refusal("[" * 5000 + "]" * 5000, "deep.json")
    assert "deeper than the limit of 100 levels" in error.issue.message
    assert error.issue.line == 1 and error.issue.source == "deep.json"


def test_json_nested_just_past_the_limit_is_refused_at_the_value_that_is_too_deep() -> None:
    deep = "[" * MAX_NESTING_DEPTH + "1" + "]" * MAX_NESTING_DEPTH
    text = '{\n  "name": "x",\n  "nodes": [\n    {"id": "c", "type": "Constant",\n'
    text += f'     "config": {{"value": {deep}}}}}\n  ]\n}}\n'
    error = refusal(text, "deep.json")
    assert "nests deeper than the limit of 100 levels" in error.issue.message
    assert error.issue.message.startswith("nodes[0].config.value[0]")
    assert error.issue.line == 5


def test_json_nested_within_the_limit_loads() -> None:
    depth = MAX_NESTING_DEPTH - 4  # the workflow, nodes, the node and its config come first
    deep = "[" * depth + "1" + "]" * depth
    workflow = Workflow.loads(constant(deep), source="ok.json")
    assert validate(workflow, BUILTINS) == []


def test_yaml_nested_deeper_than_the_limit_is_refused_at_its_line() -> None:
    lines = ["name: x", "nodes:", "  - id: c", "    type: Constant", "    config:", "      value:"]
    lines += [" " * (8 + level) + "k:" for level in range(150)] + [" " * 160 + "1"]
    error = refusal("\n".join(lines) + "\n", "deep.yaml")
    assert "deeper than the limit of 100 levels" in error.issue.message
    assert error.issue.line == 6 + (MAX_NESTING_DEPTH - 4) + 1


@pytest.mark.parametrize("depth", [400, 100])
def test_groups_nested_hundreds_deep_are_refused_naming_the_depth_limit(depth: int) -> None:
    error = refusal(groups(depth), "groups.json")
    assert "deeper than the limit of 100 levels" in error.issue.message


def test_groups_nested_past_the_group_limit_within_the_nesting_limit_name_the_group_limit() -> None:
    workflow = Workflow.loads(groups(MAX_GROUP_DEPTH + 2), source="groups.json")
    messages = [issue.message for issue in validate(workflow, BUILTINS)]
    assert any(f"nest deeper than the limit of {MAX_GROUP_DEPTH} levels" in m for m in messages)


def test_a_value_built_in_python_deeper_than_the_limit_is_refused_too() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    data = {"name": "x", "nodes": [{"id": "c", "type": "Constant", "config": {"value": value}}]}
    with pytest.raises(WorkflowParseError, match="deeper than the limit of 100 levels"):
        Workflow.from_dict(data)


# integers and non-finite numbers ------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "source", "line"),
    [
        (constant("9" * 5000), "big.json", 1),
        (
            "name: x\nnodes:\n  - id: c\n    type: Constant\n    config:\n      value: "
            + "9" * 5000
            + "\n",
            "big.yaml",
            6,
        ),
        (
            "name: x\nnodes:\n  - id: c\n    type: Constant\n    config:\n      value: -"
            + "1" * 5000
            + "\n",
            "big.yaml",
            6,
        ),
    ],
    ids=["json", "yaml", "yaml-negative"],
)
def test_a_5000_digit_integer_is_refused_naming_the_digit_limit(
    text: str, source: str, line: int
) -> None:
    error = refusal(text, source)
    assert error.issue.message == (
        "nodes[0].config.value: an integer of 5,000 digits, over the limit of 4,300 digits"
    )
    assert error.issue.line == line


def test_an_integer_of_4300_digits_loads_and_dumps_back() -> None:
    digits = "7" * MAX_INT_DIGITS
    workflow = Workflow.loads(constant(digits), source="edge.json")
    assert validate(workflow, BUILTINS) == []
    assert digits in workflow.to_json()


def test_an_integer_built_in_python_over_the_digit_limit_is_refused() -> None:
    data = {"name": "x", "nodes": [{"id": "c", "type": "Constant", "config": {"value": 10**5000}}]}
    with pytest.raises(WorkflowParseError, match="over the limit of 4,300 digits"):
        Workflow.from_dict(data)


@pytest.mark.parametrize(
    ("text", "source", "shown"),
    [
        (constant("Infinity"), "inf.json", "inf"),
        (constant("-Infinity"), "inf.json", "-inf"),
        (constant("NaN"), "nan.json", "nan"),
        (constant("1e999"), "huge.json", "inf"),
        (
            "name: x\nnodes:\n  - {id: c, type: Constant, config: {value: .inf}}\n",
            "inf.yaml",
            "inf",
        ),
        (
            "name: x\nnodes:\n  - {id: c, type: Constant, config: {value: .nan}}\n",
            "nan.yaml",
            "nan",
        ),
    ],
)
def test_numbers_that_are_not_finite_are_refused_where_they_are(
    text: str, source: str, shown: str
) -> None:
    error = refusal(text, source)
    assert error.issue.message.startswith(
        f"nodes[0].config.value: the number {shown} is not finite"
    )
    assert error.issue.line is not None


def test_find_problem_walks_without_recursion_and_names_the_path() -> None:
    value: Any = {"a": [1, 2.5, "s", None, True, {"b": float("nan")}]}
    problem = find_problem(value)
    assert problem is not None and problem.path == ("a", 5, "b")
    assert find_problem({"ok": [1, 2.5, "s", None, True, 10**10]}) is None
    assert find_problem(float("inf")) is not None


# counts and size ----------------------------------------------------------------------
def test_a_60000_node_json_file_is_refused_before_its_line_map_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [{"id": f"n{i}", "type": "Constant", "config": {"value": i}} for i in range(60_000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"name": "big", "nodes": nodes}))

    def no_line_map(*_: object, **__: object) -> None:
        raise AssertionError("the line map was built for a file over the node limit")

    monkeypatch.setattr(source_module.yaml, "compose", no_line_map)
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.load(path)
    assert caught.value.issue.message.startswith(
        "workflow has 60,000 nodes, over the limit of 10,000"
    )


def test_a_yaml_file_over_the_node_limit_is_refused_before_it_is_composed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = "".join(
        f"  - {{id: n{i}, type: Constant, config: {{value: {i}}}}}\n" for i in range(10_050)
    )
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nnodes:\n" + entries)

    def no_tree(*_: object, **__: object) -> None:
        raise AssertionError("the YAML node tree was built for a file over the node limit")

    monkeypatch.setattr(source_module._Loader, "get_single_node", no_tree)
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.load(path)
    assert "more than 10,000 nodes, over the limit of 10,000" in caught.value.issue.message
    assert caught.value.issue.line == 2 + MAX_NODES + 1


def test_an_edge_list_over_the_limit_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(source_module._COUNT_LIMITS, "edges", 2)
    edges = [{"from": "a.value", "to": "b.value"}] * 3
    text = json.dumps({"name": "x", "nodes": [], "edges": edges})
    error = refusal(text, "edges.json")
    assert "workflow has 3 edges, over the limit of 2 edges" in error.issue.message


def test_a_file_through_a_pipe_is_refused_once_it_passes_the_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "flow.yaml"
    os.mkfifo(fifo)
    payload = b"#" * 5000

    def write() -> None:
        with fifo.open("wb") as stream, contextlib.suppress(BrokenPipeError):
            stream.write(payload)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with pytest.raises(WorkflowParseError, match="over the limit of 1,000 bytes"):
            Workflow.load(fifo, max_bytes=1000)
    finally:
        writer.join(timeout=10)


def test_the_limits_module_documents_every_limit() -> None:
    doc = model_limits.__doc__ or ""
    for name in ("MAX_FILE_BYTES", "MAX_NODES", "MAX_EDGES", "MAX_GROUP_DEPTH"):
        assert name in doc
    assert "MAX_NESTING_DEPTH" in doc and "MAX_INT_DIGITS" in doc
