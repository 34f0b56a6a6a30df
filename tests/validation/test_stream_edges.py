"""DESIGN 3.14: stream ports across edges - chunk types checked, a stream into a
non-stream input (or a feedback edge, or an Output) delivers the accumulated
value, located messages for what cannot fit."""

from __future__ import annotations

from collections.abc import Iterator

from nodes import Node, Ports, Stream, describe
from nodes.library import builtin_registry
from orchestrator.model import Workflow
from orchestrator.planner import compile_workflow
from tests.validation.test_validation_faults import flow, issues_of, line_of, only_issue


class Numbers(Node):
    """Streams integers."""

    class Inputs(Ports):
        n: int = 3

    class Outputs(Ports):
        value: Stream[int]

    def run(self, inputs: Inputs, ctx: object) -> Iterator[Outputs]:
        for i in range(inputs.n):
            yield self.Outputs(value=i)


class Total(Node):
    """Takes a whole list of integers."""

    class Inputs(Ports):
        values: list[int]

    class Outputs(Ports):
        total: int


class Single(Node):
    """Takes one integer."""

    class Inputs(Ports):
        value: int


class Ints(Node):
    """Reads a stream of integers."""

    class Inputs(Ports):
        values: Stream[int]


REGISTRY = builtin_registry().copy()
for node_type in (Numbers, Total, Single, Ints):
    REGISTRY.register(node_type)


def test_a_stream_of_int_into_a_stream_of_str_is_refused_at_the_edge() -> None:
    text = flow("nums: Numbers | join: Join", "nums.value -> join.tokens")
    issue = only_issue(text, REGISTRY)
    assert issue.edge == "nums.value -> join.tokens" and issue.node == "join"
    assert issue.line == line_of(text, "to: join.tokens")
    assert "output nums.value is Stream[int] but input join.tokens takes Stream[str]" in (
        issue.message
    )


def test_a_stream_into_a_non_stream_input_must_take_the_accumulated_value() -> None:
    text = flow("nums: Numbers | one: Single", "nums.value -> one.value")
    issue = only_issue(text, REGISTRY)
    assert issue.node == "one" and issue.line == line_of(text, "to: one.value")
    assert "accumulated value, list[int]" in issue.message
    # a list input takes it; a text stream into a str input gets the joined text
    assert issues_of(flow("nums: Numbers | t: Total", "nums.value -> t.values"), REGISTRY) == []
    text = flow("c: Constant {value: a b} | tok: Tokens | f: Format {template: x}")
    text = flow(
        "c: Constant {value: a b} | tok: Tokens | f: Format {template: x}",
        "c.value -> tok.text | tok.token -> f.value",
    )
    assert issues_of(text) == []


def test_a_plain_value_into_a_stream_input_is_one_chunk() -> None:
    text = flow("c: Constant {value: 1} | s: Ints", "c.value -> s.values")
    assert issues_of(text, REGISTRY) == []


def test_ports_show_their_stream_type() -> None:
    described = describe(Numbers)
    assert described["outputs"] == [{"name": "value", "type": "Stream[int]"}]
    tokens = describe(builtin_registry().get("Tokens"))
    assert tokens["outputs"][0]["type"] == "Stream[str]"


def _plan(text: str):  # type: ignore[no-untyped-def]
    return compile_workflow(Workflow.loads(text), builtin_registry())


def test_stream_edges_in_one_stage_are_live_and_others_accumulate() -> None:
    text = flow(
        "c: Constant {value: a b} | tok: Tokens | take: Take | join: Join | out: Output {name: t}",
        "c.value -> tok.text | tok.token -> take.items | take.items -> join.tokens"
        " | tok.token -> out.value",
    )
    plan = _plan(text)
    assert plan.nodes["tok"].streams == (("token", "take"),)
    assert plan.nodes["take"].streams == (("items", "join"),)
    assert [b.stream for b in plan.nodes["take"].inputs] == [True]
    assert [b.stream for b in plan.nodes["out"].inputs] == [False]  # the accumulated text


def test_a_stream_over_a_feedback_edge_carries_the_accumulated_value() -> None:
    looped = flow(
        "texts: Items {items: [a b, c d]} | tok: Tokens | join: Join | out: Output {name: t}"
        " | m: Compare {op: eq} | last: Output {name: last}",
        "texts.item -> tok.text | tok.token -> join.tokens | join.text -> out.value"
        " | texts.item -> m.a | tok.token -> m.b, feedback: true, initial: ''"
        " | m.result -> last.value",
    )
    plan = _plan(looped)
    [feedback] = [b for b in plan.nodes["m"].inputs if b.feedback]
    assert not feedback.stream  # the previous iteration's accumulated text
    assert plan.nodes["tok"].streams == (("token", "join"),)
