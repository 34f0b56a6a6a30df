"""Random workflows: valid ones always plan soundly, one injected fault is always reported."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.library import builtin_registry
from orchestrator.errors import WorkflowInvalid
from orchestrator.model import Workflow
from orchestrator.planner import Plan, compile_workflow
from orchestrator.validation import validate

REGISTRY = builtin_registry()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OUTPUT = {"Constant": "value", "Range": "value", "Items": "item", "Math": "result",
          "Format": "text", "Output": "value"}  # fmt: skip
NUMERIC = {"Constant", "Range", "Items", "Math", "Output"}  # outputs a Math input accepts
BAD_CONFIG: dict[str, dict[str, Any]] = {
    "Constant": {},
    "Range": {"start": 1},
    "Items": {"items": "not a list"},
    "Math": {"op": "pow2"},
    "Format": {"template": 5},
    "Preview": {"max_chars": 0},
    "Output": {"name": ""},
}

Data = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass
class Generated:
    """A workflow as plain data, and the loop the generator put each node in."""

    data: Data
    loop_of: dict[str, str]


class _Builder:
    """Grows a valid workflow: every input fed once, from its own loop or the main stage."""

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        self.nodes: list[Data] = []
        self.edges: list[Data] = []
        self.loop_of: dict[str, str] = {}
        self.ids = itertools.count()
        self.pending: list[tuple[str, str]] = []  # (loop, input) fed back once the loop is built

    def node(self, loop: str, kind: str, config: Data) -> str:
        node_id = f"{kind.lower()}_{next(self.ids)}"
        entry: Data = {"id": node_id, "type": kind, "config": config}
        if kind in ("Math", "Format") and self.draw(st.integers(0, 4)) == 0:
            entry["blocking"] = False
        if kind != "Range" and kind != "Items" and self.draw(st.booleans()):
            entry["cache"] = self.draw(st.booleans())
        self.nodes.append(entry)
        self.loop_of[node_id] = loop
        return node_id

    def sources(self, loop: str, numeric: bool) -> list[str]:
        types = {n["id"]: n["type"] for n in self.nodes}
        return [
            f"{node_id}.{OUTPUT[types[node_id]]}"
            for node_id, at in self.loop_of.items()
            if at == loop and types[node_id] in (NUMERIC if numeric else OUTPUT)
        ]

    def edge(self, source: str, target: str, **options: Any) -> None:
        self.edges.append({"from": source, "to": target, **options})

    def consumer(self, loop: str) -> str:
        """Add a non-producer node fed by ``loop`` (its first input) and the main stage."""
        kind = self.draw(st.sampled_from(["Math", "Format", "Preview", "Output"]))
        numeric = kind == "Math"
        own = self.sources(loop, numeric)
        if not own:  # the main stage may still be empty: give it a constant
            self.node("main", "Constant", {"value": self.draw(st.integers(-3, 3))})
            own = self.sources(loop, numeric)
        config = {
            "Math": {"op": self.draw(st.sampled_from(["add", "mul", "max", "sub"]))},
            "Format": {"template": "v={value}"},
            "Preview": {"label": "p"},
            "Output": {},
        }[kind]
        node_id = self.node(loop, kind, config)
        if kind == "Output":
            config["name"] = node_id
        first = "a" if numeric else "value"
        self.edge(self.draw(st.sampled_from(own)), f"{node_id}.{first}")
        if numeric:
            self.second_operand(loop, node_id)
        return node_id

    def second_operand(self, loop: str, node_id: str) -> None:
        choice = self.draw(st.sampled_from(["own", "main", "feedback", "feedback"]))
        if choice == "feedback" and loop != "main":
            # The source may be any numeric node of the loop, this one or a later one.
            self.pending.append((loop, f"{node_id}.b"))
            return
        own = f"{node_id}.result"
        pool = [s for s in self.sources("main" if choice == "main" else loop, True) if s != own]
        pool = pool or [s for s in self.sources(loop, numeric=True) if s != own]
        self.edge(self.draw(st.sampled_from(pool)), f"{node_id}.b")


@st.composite
def valid_workflows(draw: Draw) -> Generated:
    b = _Builder(draw)
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            b.node("main", "Constant", {"value": draw(st.integers(-3, 3))})
        else:
            b.consumer("main")
    loops: Data = {}
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["Range", "Items"]))
        config = {"stop": draw(st.integers(0, 4))} if kind == "Range" else {"items": [1, 2]}
        producer = b.node("", kind, config)
        b.loop_of[producer] = producer
        for _ in range(draw(st.integers(0, 5))):
            b.consumer(producer)
        if draw(st.booleans()):
            pool = draw(st.sampled_from(["thread", "asyncio", "process"]))
            loops[producer] = {"pool": pool, "on_error": "continue"}
    for loop, target in b.pending:
        source = draw(st.sampled_from(b.sources(loop, numeric=True)))
        b.edge(source, target, feedback=True, initial=draw(st.integers(-2, 2)))
    data: Data = {
        "name": "random",
        "nodes": draw(st.permutations(b.nodes)),
        "edges": draw(st.permutations(b.edges)),
    }
    if loops:
        data["loops"] = loops
    return Generated(data, b.loop_of)


def assert_sound(plan: Plan, workflow: Workflow, loop_of: dict[str, str]) -> None:
    placed = [node for loop in plan.all_loops() for node in loop.nodes]
    assert sorted(placed) == sorted(n.id for n in workflow.nodes)  # each exactly once
    assert {n.id: n.loop for n in plan.nodes.values()} == loop_of
    for name, loop in plan.loops.items():
        assert loop.producer == name and loop.nodes[0] == name
    at = {node: i for loop in plan.all_loops() for i, node in enumerate(loop.nodes)}
    for edge in workflow.edges:
        source, target = plan.nodes[edge.source_node], plan.nodes[edge.target_node]
        if edge.feedback:
            assert source.loop == target.loop != "main"
        elif source.loop == target.loop:
            assert at[source.id] < at[target.id], edge.label
        else:
            assert source.loop == "main", edge.label


@SETTINGS
@given(valid_workflows())
def test_a_random_valid_workflow_plans_every_node_once_in_dataflow_order(
    generated: Generated,
) -> None:
    workflow = Workflow.from_dict(generated.data)
    plan = compile_workflow(workflow, REGISTRY)
    assert_sound(plan, workflow, generated.loop_of)


@SETTINGS
@given(valid_workflows())
def test_a_random_valid_workflow_survives_a_yaml_round_trip_and_plans_the_same(
    generated: Generated,
) -> None:
    workflow = Workflow.from_dict(generated.data)
    again = Workflow.loads(workflow.to_yaml(), source="flow.yaml")
    assert again == workflow and again.to_dict() == workflow.to_dict()
    assert validate(again, REGISTRY) == []
    assert compile_workflow(again, REGISTRY) == compile_workflow(workflow, REGISTRY)


# Faults, each injected into a valid workflow


def _ids(data: Data) -> list[str]:
    return [n["id"] for n in data["nodes"]]


def dangling_edge(data: Data, draw: Draw) -> None:
    with_output = [n for n in data["nodes"] if n["type"] in OUTPUT]
    source = draw(st.sampled_from(with_output))
    data["edges"].append({"from": f"{source['id']}.{OUTPUT[source['type']]}", "to": "ghost.value"})


def cycle_without_feedback(data: Data, draw: Draw) -> None:
    types = {n["id"]: n["type"] for n in data["nodes"]}
    # Feed a node's input from its own output: the shortest cycle, typed correctly.
    candidates = [
        e for e in data["edges"]
        if not e.get("feedback") and types[e["to"].split(".")[0]] in OUTPUT
    ]  # fmt: skip
    if not candidates:
        ring = [{"id": f"ring_{n}", "type": "Format", "config": {"template": n}} for n in "ab"]
        data["nodes"] += ring
        data["edges"] += [{"from": "ring_a.text", "to": "ring_b.value"},
                          {"from": "ring_b.text", "to": "ring_a.value"}]  # fmt: skip
        return
    edge = draw(st.sampled_from(candidates))
    target = edge["to"].split(".")[0]
    edge["from"] = f"{target}.{OUTPUT[types[target]]}"


def duplicate_id(data: Data, draw: Draw) -> None:
    taken = draw(st.sampled_from(_ids(data)))
    at = draw(st.integers(0, len(data["nodes"])))
    data["nodes"].insert(at, {"id": taken, "type": "Constant", "config": {"value": 0}})


def fed_by_two_loops(data: Data, draw: Draw) -> None:
    producers = [n["id"] for n in data["nodes"] if n["type"] in ("Range", "Items")]
    while len(producers) < 2:
        producers.append(f"extra_{len(producers)}")
        data["nodes"].append({"id": producers[-1], "type": "Range", "config": {"stop": 2}})
    first, second = draw(st.lists(st.sampled_from(producers), min_size=2, max_size=2, unique=True))
    port = {n["id"]: OUTPUT[n["type"]] for n in data["nodes"] if n["type"] in OUTPUT}
    data["nodes"].append({"id": "joined", "type": "Math", "config": {"op": "add"}})
    data["edges"] += [{"from": f"{first}.{port[first]}", "to": "joined.a"},
                      {"from": f"{second}.{port[second]}", "to": "joined.b"}]  # fmt: skip


def bad_config(data: Data, draw: Draw) -> None:
    node = draw(st.sampled_from(data["nodes"]))
    node["config"] = dict(BAD_CONFIG[node["type"]])


FAULTS = [dangling_edge, cycle_without_feedback, duplicate_id, fed_by_two_loops, bad_config]


@SETTINGS
@given(valid_workflows(), st.sampled_from(FAULTS), st.data())
def test_one_injected_fault_is_reported_located_and_never_crashes(
    generated: Generated, fault: Callable[[Data, Draw], None], data: st.DataObject
) -> None:
    broken = copy.deepcopy(generated.data)
    fault(broken, data.draw)
    text = Workflow.from_dict(broken).to_yaml()
    workflow = Workflow.loads(text, source="flow.yaml")  # the dump always parses
    issues = validate(workflow, REGISTRY)  # anything raised here fails the test
    assert issues, f"{fault.__name__} was not reported"
    assert all(issue.line is not None for issue in issues), issues
    assert all(issue.source == "flow.yaml" for issue in issues)
    lines = [issue.line or 0 for issue in issues]
    assert lines == sorted(lines)
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow(workflow, REGISTRY)
    assert caught.value.issues == issues
