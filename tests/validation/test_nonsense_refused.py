"""Nonsense that used to pass validation and fail at run time (or never end) is refused
before anything runs, located at the node and the config key that says it.

Decisions: a workflow needs a node; node configs are validated strictly (a
string is not a number, ``true`` is not a number) with finite numbers only; a
``Format`` template must be able to render its input; a file path cannot hold
a NUL character.
"""

from __future__ import annotations

import json

import pytest

from nodes.library import builtin_registry
from nodes.library.transform import Format, check_template
from orchestrator.errors import Issue, WorkflowParseError
from orchestrator.model import Workflow
from orchestrator.validation import validate

BUILTINS = builtin_registry()


def issues(text: str, source: str = "flow.yaml") -> list[Issue]:
    return validate(Workflow.loads(text, source=source), BUILTINS)


def only(text: str, source: str = "flow.yaml") -> Issue:
    found = issues(text, source)
    assert len(found) == 1, [i.message for i in found]
    return found[0]


def fed(node: str) -> str:
    """A workflow where a Constant feeds ``node`` (a flow-style YAML node entry) at line 4."""
    return (
        "name: x\nnodes:\n  - {id: c, type: Constant, config: {value: 1}}\n"
        f"  - {node}\nedges:\n  - {{from: c.value, to: n.value}}\n"
    )


def test_a_workflow_with_no_nodes_is_refused() -> None:
    issue = only("name: empty\nnodes: []\n")
    assert issue.message == "workflow has no nodes, so it would do nothing; add at least one node"
    assert issue.line == 2


def test_a_workflow_without_a_nodes_key_is_refused_too() -> None:
    assert "workflow has no nodes" in only("name: empty\n").message


def test_a_group_running_a_workflow_with_no_nodes_is_refused_at_the_group() -> None:
    text = (
        "name: x\nnodes:\n  - {id: i, type: Input, config: {name: xs, default: []}}\n"
        "  - {id: g, type: Group, config: {workflow: {name: inner, nodes: []}}}\n"
        "edges:\n  - {from: i.value, to: g.items}\n"
    )
    messages = [i.message for i in issues(text) if i.node == "g"]
    assert any("workflow has no nodes" in m for m in messages), messages


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ("true", "bad config seconds: Input should be a valid number (got true)"),
        ('"2"', 'bad config seconds: Input should be a valid number (got "2")'),
        ("-1", "bad config seconds: Input should be greater than or equal to 0"),
    ],
)
def test_sleep_seconds_must_be_a_real_non_negative_number(seconds: str, expected: str) -> None:
    issue = only(fed(f"{{id: n, type: Sleep, config: {{seconds: {seconds}}}}}"))
    assert issue.node == "n" and issue.line == 4
    assert issue.message.startswith(f"node 'n' (Sleep): {expected}")


@pytest.mark.parametrize("seconds", [".inf", ".nan", "-.inf"])
def test_sleep_seconds_of_infinity_is_refused_as_a_number_that_is_not_finite(seconds: str) -> None:
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.loads(fed(f"{{id: n, type: Sleep, config: {{seconds: {seconds}}}}}"))
    assert caught.value.issue.message.startswith("nodes[1].config.seconds: the number")
    assert "is not finite" in caught.value.issue.message and caught.value.issue.line == 4


def test_an_integer_is_still_a_valid_number_of_seconds() -> None:
    assert issues(fed("{id: n, type: Sleep, config: {seconds: 2}}")) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('{stop: "5"}', 'bad config stop: Input should be a valid integer (got "5")'),
        ("{stop: true}", "bad config stop: Input should be a valid integer (got true)"),
        ("{stop: 5.5}", "bad config stop: Input should be a valid integer (got 5.5)"),
        ('{stop: 5, step: "1"}', 'bad config step: Input should be a valid integer (got "1")'),
    ],
)
def test_range_bounds_must_be_integers_as_written(config: str, expected: str) -> None:
    issue = only(f"name: x\nnodes:\n  - {{id: r, type: Range, config: {config}}}\n")
    assert issue.node == "r" and issue.line == 3
    assert issue.message == f"node 'r' (Range): {expected}"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("a {", "Single '{' encountered in format string; write {{ or }} for a literal brace"),
        ("a }", "Single '}' encountered in format string; write {{ or }} for a literal brace"),
        ("{name}", "field {name} names 'name'; a template refers to its input as {value}"),
        ("{} and {}", "write {value} for the input: {} stands for it only once, alone"),
        ("{value.__class__}", "field {value.__class__} names a private attribute or key"),
        ("{value!x}", "field {value!x}: the conversion must be !r, !s or !a"),
    ],
)
def test_a_format_template_that_cannot_render_is_refused(template: str, expected: str) -> None:
    text = fed(f"{{id: n, type: Format, config: {{template: {json.dumps(template)}}}}}")
    issue = only(text)
    assert issue.node == "n" and issue.line == 4
    assert issue.message.startswith(
        f"node 'n' (Format): bad config template: {template!r} cannot render: {expected}"
    )


@pytest.mark.parametrize(
    "template",
    ["{value}", "n={value:.2f}", "{}", "{0} and {0!r}", "{value[key]} {value[0]}", "{{literal}}"],
)
def test_templates_that_render_pass(template: str) -> None:
    text = fed(f"{{id: n, type: Format, config: {{template: {json.dumps(template)}}}}}")
    assert issues(text) == []
    assert check_template(template) == template


def test_a_format_node_built_directly_is_not_checked_before_it_runs() -> None:
    # The run itself fails, naming the template (tests/nodes/test_library.py).
    assert Format.from_config({"template": "a {"}).config.template == "a {"


@pytest.mark.parametrize(
    ("node", "field"),
    [
        ({"id": "n", "type": "JsonlSink", "config": {"path": "out\u0000.jsonl"}}, "path"),
        ({"id": "n", "type": "WriteFile", "config": {"path": "/tmp/\u0000"}}, "path"),
    ],
)
def test_a_file_path_with_a_nul_byte_is_refused(node: dict[str, object], field: str) -> None:
    edge = "file" if node["type"] == "WriteFile" else "value"
    source = "c" if edge == "value" else "r"
    nodes = [
        {"id": "c", "type": "Constant", "config": {"value": 1}},
        {"id": "r", "type": "ReadFile", "config": {"path": "in.bin"}},
        node,
    ]
    text = json.dumps(
        {"name": "x", "nodes": nodes, "edges": [{"from": f"{source}.{edge}", "to": f"n.{edge}"}]},
        indent=1,
    )
    issue = only(text, source="flow.json")
    assert issue.node == "n"
    assert f"bad config {field}: Value error, a file path cannot contain a NUL character" in (
        issue.message
    )


def test_an_empty_sink_path_is_refused() -> None:
    issue = only(fed('{id: n, type: JsonlSink, config: {path: ""}}'))
    assert "bad config path: String should have at least 1 character" in issue.message


def test_infinity_in_a_json_workflow_is_refused_at_its_line() -> None:
    text = '{\n "name": "x",\n "nodes": [\n  {"id": "n", "type": "Sleep",\n'
    text += '   "config": {"seconds": Infinity}}\n ]\n}\n'
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.loads(text, source="flow.json")
    assert caught.value.issue.line == 5
    assert caught.value.issue.message.startswith(
        "nodes[0].config.seconds: the number inf is not finite; JSON numbers must be finite"
    )
