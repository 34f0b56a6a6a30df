"""The workflow model: loading files, dumping them back, building in Python, shape errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import Issue, WorkflowInvalid, WorkflowParseError
from orchestrator.model import EdgeSpec, Workflow, WorkflowBuilder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SENSOR = EXAMPLES / "sensor.yaml"

SMALL_YAML = """\
name: small
nodes:
  - id: one
    type: Constant
    config: {value: 1}
  - id: out
    type: Output
    config: {name: result}
edges:
  - {from: one.value, to: out.value}
"""

SMALL_JSON = """\
{
  "name": "small",
  "nodes": [
    {"id": "one", "type": "Constant", "config": {"value": 1}},
    {"id": "out", "type": "Output", "config": {"name": "result"}}
  ],
  "edges": [{"from": "one.value", "to": "out.value"}]
}
"""

INITIALS = """\
name: initials
nodes:
  - id: ticks
    type: Range
    config: {stop: 3}
  - id: acc
    type: Math
    config: {op: add}
  - id: keep
    type: Sleep
    config: {seconds: 0}
edges:
  - {from: ticks.value, to: acc.a}
  - {from: acc.result, to: acc.b, feedback: true, initial: null}
  - {from: keep.value, to: keep.value, feedback: true}
"""


def invalid(text: str, source: str = "flow.yaml") -> list[Issue]:
    with pytest.raises(WorkflowInvalid) as caught:
        Workflow.loads(text, source=source)
    return caught.value.issues


def parse_error(text: str, source: str = "flow.yaml") -> Issue:
    with pytest.raises(WorkflowParseError) as caught:
        Workflow.loads(text, source=source)
    return caught.value.issue


# Loading files


def test_a_yaml_file_loads_with_its_name_nodes_edges_and_loops() -> None:
    workflow = Workflow.load(SENSOR)
    assert workflow.name == "sensor-demo"
    assert [n.id for n in workflow.nodes] == ["ticks", "square", "total", "out"]
    assert workflow.node("square").queue == "highmem"
    assert workflow.node("square").blocking is False
    assert workflow.edges[3].feedback and workflow.edges[3].initial == 0
    assert workflow.loops["ticks"].on_error == "continue"
    assert workflow.source.source == str(SENSOR)


def test_a_json_file_loads_like_the_equivalent_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "flow.json").write_text(SMALL_JSON)
    (tmp_path / "flow.yaml").write_text(SMALL_YAML)
    from_json = Workflow.load(tmp_path / "flow.json")
    assert from_json == Workflow.load(tmp_path / "flow.yaml")
    assert from_json.source.line_for(("nodes", 1, "config")) == 5


def test_every_key_of_a_loaded_file_knows_its_line() -> None:
    workflow = Workflow.load(SENSOR)
    assert workflow.source.line_for(("nodes", 1)) == 7
    assert workflow.source.line_for(("nodes", 1, "config", "op")) == 9
    assert workflow.source.line_for(("edges", 3, "initial")) == 25
    assert workflow.source.line_for(("loops", "ticks", "pool")) == 28


def test_a_path_missing_from_the_line_map_takes_its_nearest_ancestors_line() -> None:
    workflow = Workflow.load(SENSOR)
    assert workflow.source.line_for(("nodes", 0, "config", "step")) == 6


def test_node_lookup_by_id_raises_a_key_error_naming_the_id() -> None:
    with pytest.raises(KeyError, match="'nope'"):
        Workflow.load(SENSOR).node("nope")


# Round trips


@pytest.mark.parametrize("fmt", ["dict", "yaml", "json"])
def test_a_loaded_workflow_survives_a_dump_and_reload_unchanged(fmt: str) -> None:
    original = Workflow.load(SENSOR)
    if fmt == "dict":
        again = Workflow.from_dict(original.to_dict())
    elif fmt == "yaml":
        again = Workflow.loads(original.to_yaml(), source="again.yaml")
    else:
        again = Workflow.loads(original.to_json(), source="again.json")
    assert again == original
    assert again.to_dict() == original.to_dict()


def test_dump_writes_json_or_yaml_by_suffix_and_both_reload_equal(tmp_path: Path) -> None:
    original = Workflow.load(SENSOR)
    original.dump(tmp_path / "out.json")
    original.dump(tmp_path / "out.yaml")
    assert json.loads((tmp_path / "out.json").read_text())["name"] == "sensor-demo"
    assert Workflow.load(tmp_path / "out.json") == original
    assert Workflow.load(tmp_path / "out.yaml") == original


def test_to_dict_holds_only_what_the_file_set() -> None:
    data = Workflow.loads(SMALL_YAML).to_dict()
    assert data == {
        "name": "small",
        "nodes": [
            {"id": "one", "type": "Constant", "config": {"value": 1}},
            {"id": "out", "type": "Output", "config": {"name": "result"}},
        ],
        "edges": [{"from": "one.value", "to": "out.value"}],
    }


@pytest.mark.parametrize("dump", ["to_yaml", "to_json"])
def test_an_explicit_initial_null_stays_set_and_an_unset_initial_stays_unset(dump: str) -> None:
    original = Workflow.loads(INITIALS)
    again = Workflow.loads(getattr(original, dump)())
    explicit, unset = again.edges[1], again.edges[2]
    assert explicit.has_initial and explicit.initial is None
    assert not unset.has_initial
    assert again.to_dict()["edges"][1] == {
        "from": "acc.result",
        "to": "acc.b",
        "feedback": True,
        "initial": None,
    }
    assert "initial" not in again.to_dict()["edges"][2]
    assert again == original and again.to_dict() == original.to_dict()


def test_a_workflow_setting_initial_null_differs_from_one_leaving_it_unset() -> None:
    explicit = Workflow.loads(INITIALS)
    unset = Workflow.loads(INITIALS.replace(", initial: null", ""))
    assert explicit != unset


def test_edges_hash_consistently_with_equality_even_with_a_list_as_initial() -> None:
    fields = {"from": "a.x", "to": "a.y", "feedback": True, "initial": [1, 2]}
    first, second = EdgeSpec.model_validate(fields), EdgeSpec.model_validate(dict(fields))
    assert first == second and hash(first) == hash(second)
    assert EdgeSpec.model_validate({**fields, "initial": None}) != EdgeSpec.model_validate(
        {"from": "a.x", "to": "a.y", "feedback": True}
    )


def test_where_a_workflow_was_read_from_is_not_part_of_its_equality(tmp_path: Path) -> None:
    (tmp_path / "moved.yaml").write_text("\n\n" + SMALL_YAML)
    assert Workflow.load(tmp_path / "moved.yaml") == Workflow.loads(SMALL_YAML)


# The builder


def test_the_builder_produces_the_same_model_as_the_equivalent_file() -> None:
    b = WorkflowBuilder("sensor-demo", description="optional text")
    ticks = b.node("ticks", "Range", config={"start": 0, "stop": 5})
    square = b.node(
        "square",
        "Math",
        config={"op": "mul"},
        retry={"attempts": 3, "backoff_s": 0.2, "max_backoff_s": 10},
        timeout_s=30,
        cache=True,
        queue="highmem",
        blocking=False,
    )
    total = b.node("total", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "squares"})
    b.edge(ticks["value"], square["a"]).edge(ticks["value"], square["b"])
    b.edge(square["result"], total["a"])
    b.edge(total["result"], total["b"], feedback=True, initial=0)
    b.edge(square["result"], out["value"])
    b.loop(
        "ticks",
        pool="thread",
        on_error="continue",
        max_iterations=1000,
        max_inflight_nonblocking=64,
    )
    built = b.build()
    from_file = Workflow.load(SENSOR)
    assert built == from_file
    assert built.to_dict() == from_file.to_dict()


def test_the_builder_keeps_an_explicit_initial_null_like_a_file_does() -> None:
    b = WorkflowBuilder("initials")
    b.node("ticks", "Range", config={"stop": 3})
    b.node("acc", "Math", config={"op": "add"})
    b.node("keep", "Sleep", config={"seconds": 0})
    b.edge("ticks.value", "acc.a").edge("acc.result", "acc.b", feedback=True, initial=None)
    b.edge("keep.value", "keep.value", feedback=True)
    assert b.build().to_dict() == Workflow.loads(INITIALS).to_dict()


# Files that cannot be read or parsed


def test_malformed_yaml_is_reported_at_the_line_of_the_syntax_error() -> None:
    text = "name: x\nnodes:\n  - id: a\n    type: Math: Format\n"
    issue = parse_error(text)
    assert issue.line == 4 and issue.source == "flow.yaml"
    assert "invalid YAML at line 4" in issue.message


def test_malformed_json_is_reported_at_the_line_of_the_syntax_error() -> None:
    text = '{\n  "name": "x",\n  "nodes": [\n    {"id": "a",}\n  ]\n}\n'
    issue = parse_error(text, source="flow.json")
    assert issue.line == 4
    assert "invalid JSON at line 4" in issue.message


def test_a_json_file_is_parsed_as_json_even_where_yaml_would_accept_it(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text("name: x\nnodes: []\n")
    with pytest.raises(WorkflowParseError, match="invalid JSON at line 1"):
        Workflow.load(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL_YAML + "#" * 200)
    with pytest.raises(WorkflowParseError, match="over the limit of 100 bytes") as caught:
        Workflow.load(path, max_bytes=100)
    assert caught.value.issue.source == str(path)


def test_the_default_size_limit_is_five_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL_YAML + "#" * (5 * 1024 * 1024))
    with pytest.raises(WorkflowParseError, match="over the limit of 5,242,880 bytes"):
        Workflow.load(path)


def test_a_missing_file_is_a_parse_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(WorkflowParseError, match="no such workflow file") as caught:
        Workflow.load(path)
    assert str(path) in str(caught.value)


def test_a_directory_or_non_utf8_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowParseError, match="is a directory"):
        Workflow.load(tmp_path)
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(WorkflowParseError, match="not UTF-8"):
        Workflow.load(path)


def test_a_file_holding_a_list_is_refused_as_not_a_mapping() -> None:
    issue = parse_error("- a\n- b\n")
    assert "must be a mapping" in issue.message and "a list" in issue.message
    assert issue.line == 1


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_refused_as_empty(text: str) -> None:
    assert "this file is empty" in parse_error(text).message


def test_yaml_anchors_and_aliases_load_as_if_written_out() -> None:
    text = (
        "name: x\nnodes:\n"
        "  - {id: a, type: Math, config: {op: add}, retry: &retry {attempts: 3}}\n"
        "  - {id: b, type: Math, config: {op: add}, retry: *retry}\n"
    )
    workflow = Workflow.loads(text)
    assert workflow.node("a").retry == workflow.node("b").retry
    assert workflow.node("b").retry is not None and workflow.node("b").retry.attempts == 3


def test_a_file_whose_aliases_multiply_its_values_is_refused_before_it_expands() -> None:
    lines = ["name: bomb", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["nodes: [{id: a, type: Constant, config: {value: *l8}}]"]
    issue = parse_error("\n".join(lines))  # 10**9 values if expanded
    assert "through YAML aliases" in issue.message and issue.source == "flow.yaml"


def test_a_duplicate_yaml_key_is_reported_with_its_line() -> None:
    text = "name: x\nnodes:\n  - id: a\n    type: Math\n    config:\n      op: add\n      op: mul\n"
    (issue,) = invalid(text)
    assert issue.line == 7
    assert "duplicate key 'op'" in issue.message and "nodes[0].config" in issue.message


def test_a_duplicate_key_in_a_json_file_is_reported_too() -> None:
    (issue,) = invalid('{\n"name": "x",\n"name": "y"\n}\n', source="flow.json")
    assert issue.line == 3 and "duplicate key 'name'" in issue.message


# Shape errors


def test_a_node_without_type_is_reported_on_the_node_with_its_line() -> None:
    (issue,) = invalid("name: x\nnodes:\n  - id: a\n    config: {}\n")
    assert issue.node == "a" and issue.line == 3
    assert "node 'a'" in issue.message and "type" in issue.message
    assert "Field required" in issue.message


def test_an_unknown_field_is_reported_at_its_own_line() -> None:
    (issue,) = invalid("name: x\nnodes:\n  - id: a\n    type: Math\n    typo: 1\n")
    assert issue.node == "a" and issue.line == 5
    assert "typo" in issue.message and "Extra inputs are not permitted" in issue.message


def test_an_id_outside_the_identifier_pattern_is_reported_with_the_id() -> None:
    (issue,) = invalid("name: x\nnodes:\n  - id: 1a\n    type: Math\n")
    assert issue.node == "1a" and issue.line == 3
    assert "'1a'" in issue.message and "pattern" in issue.message


def test_an_edge_endpoint_without_a_port_is_reported_on_the_edge() -> None:
    text = "name: x\nnodes:\n  - id: a\n    type: Math\nedges:\n  - from: a.result\n    to: bx\n"
    (issue,) = invalid(text)
    assert issue.edge == "a.result -> bx" and issue.line == 7
    assert "'bx' is not of the form node.port" in issue.message


def test_every_shape_error_of_a_file_is_reported_at_once_in_order() -> None:
    text = (
        "name: x\nnodes:\n  - id: a\n  - id: b\n    type: Math\n    typo: 1\n"
        "edges:\n  - {from: bx, to: a.a}\n"
    )
    issues = invalid(text)
    assert [(i.node, i.edge, i.line) for i in issues] == [
        ("a", None, 3),
        ("b", None, 6),
        (None, "bx -> a.a", 8),
    ]


def test_a_missing_name_and_a_bad_loop_policy_are_located() -> None:
    text = "nodes: []\nloops:\n  r: {pool: fork}\n"
    issues = invalid(text)
    messages = {i.line: i.message for i in issues}
    assert "name" in messages[1] and "Field required" in messages[1]
    assert "loops.r.pool" in messages[3] and "'fork'" in messages[3]
