"""The planner: loops split off their producers, dataflow order, routes, queues, subplans."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from nodes import Node, Ports
from nodes.base import NodeKind
from nodes.library import builtin_registry
from orchestrator.model import Workflow
from orchestrator.planner import (
    InputBinding,
    InputPlan,
    OutputPlan,
    Plan,
    QueueEndpoint,
    QueuePlan,
    Route,
    build_plan,
    compile_workflow,
)
from orchestrator.validation import check

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REGISTRY = builtin_registry()


class Accumulate(Node):
    """A node with an optional input, for a feedback edge that needs no ``initial``."""

    class Inputs(Ports):
        value: int
        state: int | None = None

    class Outputs(Ports):
        total: int


WITH_ACCUMULATE = builtin_registry().copy()
WITH_ACCUMULATE.register(Accumulate)


def plan_of(text: str) -> Plan:
    return compile_workflow(Workflow.loads(text), REGISTRY)


def sensor() -> Plan:
    return compile_workflow(Workflow.load(EXAMPLES / "sensor.yaml"), REGISTRY)


def flow(nodes: list[str], edges: str = "", loops: str = "") -> str:
    """A YAML file from flow-style node entries and `` | ``-separated ``a.x -> b.y`` edges."""
    text = "name: flow\nnodes:\n" + "".join(f"  - {{{n}}}\n" for n in nodes)
    if edges:
        text += "edges:\n"
    for edge in edges.split(" | ") if edges else ():
        source, _, rest = edge.partition(" -> ")
        target, _, options = rest.partition(", ")
        text += f"  - {{from: {source}, to: {target}" + (f", {options}}}\n" if options else "}\n")
    return text + (f"loops:\n{loops}" if loops else "")


TWO_LOOPS = flow(
    [
        "id: factor, type: Constant, config: {value: 10}",
        "id: readings, type: Range, config: {stop: 5}",
        "id: scaled, type: Math, config: {op: mul}",
        "id: publish, type: QueueWriter, config: {queue: scaled}",
        "id: consume, type: QueueReader, config: {queue: scaled, group: workers}",
        "id: audit, type: QueueReader, config: {queue: scaled}",
        "id: label, type: Format, config: {template: 'reading {value}'}",
        "id: labels, type: Output, config: {name: labels, collect: last}",
        "id: remote, type: QueueReader, config: {queue: feed, scope: global}",
        "id: show, type: Preview",
    ],
    "readings.value -> scaled.a | factor.value -> scaled.b | scaled.result -> publish.value"
    " | consume.item -> label.value | label.text -> labels.value | remote.item -> show.value",
)


# Loops and the main stage


def test_the_sensor_example_is_one_loop_with_the_producer_first_and_an_empty_main_stage() -> None:
    plan = sensor()
    assert plan.workflow == "sensor-demo"
    assert plan.main.nodes == () and plan.main.producer is None
    assert list(plan.loops) == ["ticks"]
    ticks = plan.loop("ticks")
    assert ticks.producer == "ticks"
    assert ticks.nodes == ("ticks", "square", "total", "out")
    assert ticks.policy.on_error == "continue" and ticks.policy.max_iterations == 1000


def test_a_non_blocking_node_and_everything_downstream_of_it_are_detached() -> None:
    plan = sensor()
    ticks = plan.loop("ticks")
    assert ticks.blocking == ("ticks",)
    assert ticks.detached == ("square", "total", "out")
    assert plan.nodes["square"].blocking is False
    assert plan.nodes["total"].blocking is True and plan.nodes["total"].detached is True


def test_nodes_fed_by_no_producer_form_the_main_stage_and_each_producer_roots_a_loop() -> None:
    plan = plan_of(TWO_LOOPS)
    assert plan.main.nodes == ("factor",)
    assert plan.all_loops()[0] is plan.main
    assert list(plan.loops) == ["readings", "consume", "audit", "remote"]
    assert plan.loop("readings").nodes == ("readings", "scaled", "publish")
    assert plan.loop("consume").nodes == ("consume", "label", "labels")
    assert plan.loop("audit").nodes == ("audit",)
    assert {n.id: n.loop for n in plan.nodes.values()}["scaled"] == "readings"


def test_asking_for_an_unknown_loop_raises_a_key_error_naming_the_known_loops() -> None:
    plan = sensor()
    assert plan.loop("main") is plan.main
    with pytest.raises(KeyError, match=r"no loop 'nope'; loops: main, ticks"):
        plan.loop("nope")


def test_a_loop_runs_its_nodes_in_dataflow_order() -> None:
    text = flow(
        [
            "id: r, type: Range, config: {stop: 3}",
            "id: last, type: Math, config: {op: add}",
            "id: left, type: Math, config: {op: add}",
            "id: right, type: Math, config: {op: mul}",
        ],
        "left.result -> last.a | right.result -> last.b | r.value -> left.a"
        " | r.value -> left.b | r.value -> right.a | left.result -> right.b",
    )
    plan = plan_of(text)
    assert plan.loop("r").nodes == ("r", "left", "right", "last")
    assert plan.nodes["last"].upstream == ("left", "right")
    assert plan.nodes["left"].consumers == ("last", "right")


def test_every_node_is_planned_once_with_its_type_kind_and_position() -> None:
    plan = sensor()
    assert list(plan.nodes) == ["ticks", "square", "total", "out"]
    ticks, square = plan.nodes["ticks"], plan.nodes["square"]
    assert ticks.kind is NodeKind.PRODUCER and ticks.type_name == "Range" and ticks.position == 0
    assert square.kind is NodeKind.TASK and square.type_version == 1 and square.position == 1
    assert dict(square.config) == {"op": "mul"}
    assert square.retry.attempts == 3 and square.timeout_s == 30


# Bindings


def test_inputs_are_bound_to_their_source_ports_in_edge_order() -> None:
    square = sensor().nodes["square"]
    assert square.inputs == (
        InputBinding("a", "ticks", "value"),
        InputBinding("b", "ticks", "value"),
    )
    assert square.upstream == ("ticks",)


def test_a_feedback_binding_carries_its_initial_value_into_iteration_zero() -> None:
    plan = sensor()
    binding = InputBinding("b", "total", "result", feedback=True, initial=0, has_initial=True)
    assert plan.loop("ticks").feedback == (("total", binding),)
    assert plan.nodes["total"].upstream == ("square",)


def test_a_feedback_edge_without_initial_is_bound_with_no_initial() -> None:
    text = flow(
        [
            "id: r, type: Range, config: {stop: 3}",
            "id: acc, type: Accumulate",
            "id: acc0, type: Accumulate",
        ],
        "r.value -> acc.value | acc.total -> acc.state, feedback: true"
        " | r.value -> acc0.value | acc0.total -> acc0.state, feedback: true, initial: null",
    )
    plan = compile_workflow(Workflow.loads(text), WITH_ACCUMULATE)
    bindings = dict(plan.loop("r").feedback)
    assert bindings["acc"] == InputBinding("state", "acc", "total", feedback=True)
    assert not bindings["acc"].has_initial
    assert bindings["acc0"].has_initial and bindings["acc0"].initial is None


# Routes and caching


def test_a_node_runs_on_its_loops_pool_and_the_queue_named_after_the_pool() -> None:
    text = flow(
        [
            "id: r, type: Range, config: {stop: 3}",
            "id: f, type: Format, config: {template: x}",
            "id: k, type: Constant, config: {value: 1}",
        ],
        "r.value -> f.value",
        loops="  r: {pool: process}\n",
    )
    plan = plan_of(text)
    assert plan.nodes["f"].route == Route(pool="process", queue="process", gpu=0)
    assert plan.nodes["r"].route == Route("process", "process", 0)
    assert plan.nodes["k"].route == Route("thread", "thread", 0)  # the main stage's default pool


def test_an_entrys_queue_overrides_the_pools_queue() -> None:
    assert sensor().nodes["square"].route == Route(pool="thread", queue="highmem", gpu=0)


def test_a_gpu_node_type_goes_to_the_gpu_queue() -> None:
    text = flow(
        ["id: r, type: Range, config: {stop: 3}", "id: mm, type: TorchMatmul, config: {size: 8}"],
        "r.value -> mm.seed",
        loops="  r: {pool: asyncio}\n",
    )
    assert plan_of(text).nodes["mm"].route == Route(pool="asyncio", queue="gpu", gpu=1)


def test_caching_follows_the_entry_else_the_types_cacheable_flag() -> None:
    text = flow(
        [
            "id: k, type: Constant, config: {value: 1}",
            "id: fmt, type: Format, config: {template: x}",
            "id: fresh, type: Format, config: {template: x}, cache: false",
            "id: m, type: Math, config: {op: add}",
            "id: kept, type: Math, config: {op: add}, cache: true",
        ],
        "k.value -> fmt.value | k.value -> fresh.value | k.value -> m.a | k.value -> m.b"
        " | k.value -> kept.a | k.value -> kept.b",
    )
    cache = {n.id: n.cache for n in plan_of(text).nodes.values()}
    assert cache == {"k": False, "fmt": True, "fresh": False, "m": False, "kept": True}
    assert sensor().nodes["square"].cache is True


# Inputs, outputs, queues, groups


def test_input_nodes_become_job_inputs_with_their_defaults() -> None:
    text = flow(
        [
            "id: n, type: Input, config: {name: n}",
            "id: scale, type: Input, config: {name: scale, default: 2}",
            "id: label, type: Input, config: {name: label, default: null}",
            "id: n_again, type: Input, config: {name: n, default: 5}",
        ]
    )
    inputs = plan_of(text).inputs
    assert inputs["scale"] == InputPlan("scale", ("scale",), has_default=True, default=2)
    assert inputs["label"] == InputPlan("label", ("label",), has_default=True, default=None)
    assert inputs["n"] == InputPlan("n", ("n", "n_again"), has_default=True, default=5)


def test_output_nodes_become_job_outputs_with_their_loop_and_collect_mode() -> None:
    assert sensor().outputs == {"squares": OutputPlan("squares", "out", "ticks", "list")}
    assert plan_of(TWO_LOOPS).outputs["labels"] == OutputPlan("labels", "labels", "consume", "last")
    assert sensor().loop("ticks").outputs == ("out",)


def test_a_queue_lists_its_writers_and_readers_with_their_loops_and_groups() -> None:
    queues = plan_of(TWO_LOOPS).queues
    assert queues["scaled"] == QueuePlan(
        name="scaled",
        scope="job",
        writers=(QueueEndpoint("readings", "publish"),),
        readers=(QueueEndpoint("consume", "consume", "workers"), QueueEndpoint("audit", "audit")),
    )


def test_a_global_queue_is_planned_with_global_scope_and_no_writer() -> None:
    queues = plan_of(TWO_LOOPS).queues
    assert queues["feed"] == QueuePlan("feed", "global", (), (QueueEndpoint("remote", "remote"),))
    assert list(queues) == ["scaled", "feed"]


def test_a_group_node_gets_a_subplan_of_its_sub_workflow() -> None:
    plan = compile_workflow(Workflow.load(EXAMPLES / "group-map.yaml"), REGISTRY)
    assert plan.main.nodes == ("numbers", "squares", "out")
    sub = plan.subplans["squares"]
    assert sub.workflow == "square-one"
    assert sub.main.nodes == ("x", "sq", "y") and sub.loops == {}
    assert list(sub.inputs) == ["item"] and not sub.inputs["item"].has_default
    assert sub.outputs["result"].node == "y"
    assert sensor().subplans == {}


# Determinism and immutability


def test_compiling_the_same_workflow_twice_gives_equal_plans() -> None:
    workflow = Workflow.load(EXAMPLES / "sensor.yaml")
    assert compile_workflow(workflow, REGISTRY) == compile_workflow(workflow, REGISTRY)
    assert plan_of(TWO_LOOPS) == plan_of(TWO_LOOPS)


def test_build_plan_of_a_validated_workflow_equals_compile_workflow() -> None:
    workflow = Workflow.load(EXAMPLES / "sensor.yaml")
    assert build_plan(check(workflow, REGISTRY), REGISTRY) == compile_workflow(workflow, REGISTRY)


FAN = flow(
    [
        "id: k, type: Constant, config: {value: 2}",
        "id: r, type: Range, config: {stop: 2}",
        "id: a, type: Format, config: {template: a}",
        "id: b, type: Math, config: {op: add}",
        "id: c, type: Format, config: {template: c}",
        "id: d, type: Preview",
        "id: e, type: Preview",
    ],
    "k.value -> c.value | k.value -> b.b | k.value -> a.value | r.value -> b.a"
    " | b.result -> e.value | r.value -> d.value",
)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("text", [FAN, TWO_LOOPS], ids=["fan", "two-loops"])
def test_the_order_of_edges_in_the_file_does_not_change_the_order_of_nodes(
    text: str, seed: int
) -> None:
    original = Workflow.loads(text)
    data: dict[str, Any] = original.to_dict()
    random.Random(seed).shuffle(data["edges"])
    shuffled = compile_workflow(Workflow.from_dict(data), REGISTRY)
    plan = compile_workflow(original, REGISTRY)
    assert list(shuffled.nodes) == list(plan.nodes)
    for loop in plan.all_loops():
        assert shuffled.loop(loop.name).nodes == loop.nodes


def test_where_edges_leave_the_order_free_nodes_keep_their_declaration_order() -> None:
    plan = plan_of(FAN)
    assert plan.main.nodes == ("k", "a", "c")
    assert plan.loop("r").nodes == ("r", "b", "d", "e")
    assert list(plan.nodes) == ["k", "r", "a", "b", "c", "d", "e"]


def test_a_plan_cannot_be_changed() -> None:
    plan = sensor()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.workflow = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.nodes["extra"] = plan.nodes["out"]  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.loops["extra"] = plan.main  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.nodes["square"].config["op"] = "add"  # type: ignore[index]
    for mapping in (plan.queues, plan.inputs, plan.outputs, plan.subplans):
        with pytest.raises(TypeError):
            mapping["x"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        plan.nodes["square"].cache = False  # type: ignore[misc]


def test_the_json_summary_lists_loops_queues_inputs_and_outputs() -> None:
    summary = plan_of(TWO_LOOPS).to_json()
    names = [loop["name"] for loop in summary["loops"]]
    assert names == ["main", "readings", "consume", "audit", "remote"]
    assert summary["queues"][0] == {
        "name": "scaled",
        "scope": "job",
        "writers": ["readings/publish"],
        "readers": ["consume/consume[workers]", "audit/audit"],
    }
    assert summary["outputs"] == {
        "labels": {"node": "labels", "loop": "consume", "collect": "last"}
    }
    assert sensor().to_json()["loops"][1]["feedback"] == ["total.result -> total.b"]


def test_a_planned_node_is_inline_as_its_type_says_for_its_config() -> None:
    # Node.runs_inline decides per config: an unpaced Range is cheap, a paced one
    # sleeps; Sleep never runs inline. The planner asks once per node.
    plan = plan_of(
        flow(
            [
                "id: fast, type: Range, config: {stop: 3}",
                "id: slow, type: Range, config: {stop: 3, interval_s: 0.5}",
                "id: nap, type: Sleep, config: {seconds: 0.1}",
                "id: add, type: Math, config: {op: add}",
                "id: one, type: Constant, config: {value: 1}",
            ],
            "fast.value -> nap.value | slow.value -> add.a | one.value -> add.b",
        )
    )

    assert plan.nodes["fast"].inline is True
    assert plan.nodes["slow"].inline is False
    assert plan.nodes["nap"].inline is False
    assert plan.nodes["add"].inline is True
