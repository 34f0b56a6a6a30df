"""A job's inputs are checked when it is submitted (orchestrator/submission.py): JSON within
the limits, and of the types of the ports their ``Input`` nodes feed, as the run would
validate them - so a wrong input is refused naming it, instead of failing a run."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.library import builtin_registry
from orchestrator.errors import WorkflowInvalid
from orchestrator.model import Workflow
from orchestrator.model.limits import LongInteger
from orchestrator.planner import compile_workflow
from orchestrator.submission import check_inputs

FLOW = Workflow.loads(
    """\
name: inputs
nodes:
  - {id: n, type: Input, config: {name: n}}
  - {id: label, type: Input, config: {name: label, default: none}}
  - {id: two, type: Constant, config: {value: 2}}
  - {id: square, type: Math, config: {op: pow}}
  - {id: text, type: Format, config: {template: "{value}"}}
  - {id: out, type: Output, config: {name: out}}
edges:
  - {from: n.value, to: square.a}
  - {from: two.value, to: square.b}
  - {from: label.value, to: text.value}
  - {from: square.result, to: out.value}
"""
)
PLAN = compile_workflow(FLOW, builtin_registry())


def refused(inputs: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        check_inputs(PLAN, inputs)
    return [issue.message for issue in caught.value.issues]


@pytest.mark.parametrize("value", [3, 2.5, -1, True])
def test_a_number_for_a_number_port_is_accepted(value: Any) -> None:
    assert check_inputs(PLAN, {"n": value}) == {"n": value}


def test_a_string_for_a_number_port_is_refused_naming_the_node_and_the_port() -> None:
    (message,) = refused({"n": "abc"})
    assert message.startswith(
        "input 'n' is \"abc\", which node 'square' cannot take as its input 'a' (int | float): "
    )
    assert "valid number" in message


def test_an_input_feeding_an_any_port_takes_any_json() -> None:
    assert check_inputs(PLAN, {"n": 1, "label": {"nested": [1, "x", None]}})["label"] == {
        "nested": [1, "x", None]
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), "input 'n': the number nan is not finite"),
        (float("inf"), "input 'n': the number inf is not finite"),
        (LongInteger(5000), "input 'n': an integer of 5,000 digits, over the limit of 4,300"),
        (10**5000, "input 'n': an integer of about 5,001 digits, over the limit of 4,300"),
    ],
    ids=["nan", "inf", "long-literal", "long-int"],
)
def test_a_number_json_cannot_hold_is_refused_naming_the_input(value: Any, expected: str) -> None:
    (message,) = refused({"n": value})
    assert message.startswith(expected)


def test_a_value_nested_past_the_limit_is_refused_with_where() -> None:
    value: Any = 1
    for _ in range(150):
        value = [value]
    (message,) = refused({"n": 1, "label": {"deep": value}})
    assert message.startswith("input 'label' at label.deep[0][0]")
    assert message.endswith("nests deeper than the limit of 100 levels")


def test_a_bad_value_inside_a_list_is_located() -> None:
    (message,) = refused({"n": 1, "label": [1, [2, float("-inf")]]})
    assert message.startswith("input 'label' at label[1][1]: the number -inf is not finite")


def test_unknown_and_missing_inputs_are_still_named_together_with_bad_values() -> None:
    messages = refused({"label": float("nan"), "ghost": 1})
    assert any(m.startswith("unknown input 'ghost'") for m in messages)
    assert any(m.startswith("missing input 'n'") for m in messages)
    assert any(m.startswith("input 'label': the number nan") for m in messages)


def test_the_plan_records_where_each_input_goes() -> None:
    (target,) = PLAN.inputs["n"].targets
    assert (target.node, target.port) == ("square", "a")
    assert [(t.node, t.port) for t in PLAN.inputs["label"].targets] == [("text", "value")]
