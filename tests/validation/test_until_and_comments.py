"""`until: node.port` and `Comment` nodes: refused with one located message each
when wrong, planned when right (DESIGN 3.15 and section 6)."""

from __future__ import annotations

from typing import Annotated

import pytest

from nodes import Node, Ports
from nodes.artifacts import Artifact, Mime
from nodes.library import builtin_registry
from orchestrator.errors import WorkflowInvalid
from orchestrator.model import Workflow
from orchestrator.planner import compile_workflow
from orchestrator.validation import validate


class Snapshot(Node):
    """Outputs an artifact and a flag, to name as `until`."""

    class Inputs(Ports):
        value: int

    class Outputs(Ports):
        image: Annotated[Artifact, Mime("image/*")]
        flag: bool


REGISTRY = builtin_registry().copy()
REGISTRY.register(Snapshot)

LOOP = """\
name: flow
nodes:
  - {id: limit, type: Constant, config: {value: 3}}
  - {id: ticks, type: Count}
  - {id: other, type: Count}
  - {id: done, type: Compare, config: {op: ge}}
  - {id: snap, type: Snapshot}
  - {id: show, type: Preview}
  - {id: later, type: Sleep, config: {seconds: 0}}
edges:
  - {from: ticks.value, to: done.a}
  - {from: limit.value, to: done.b}
  - {from: ticks.value, to: snap.value}
  - {from: ticks.value, to: later.value, }
  - {from: other.value, to: show.value}
loops:
  other: {max_iterations: 1}
  ticks: {until: UNTIL}
"""
UNTIL_LINE = LOOP.splitlines().index("  ticks: {until: UNTIL}") + 1


def issues_for(until: str) -> list[tuple[str, int | None]]:
    workflow = Workflow.loads(LOOP.replace("UNTIL", until))
    return [(i.message, i.line) for i in validate(workflow, REGISTRY)]


def test_until_naming_a_bool_output_of_the_loop_is_valid_and_planned() -> None:
    workflow = Workflow.loads(LOOP.replace("UNTIL", "done.result"))

    plan = compile_workflow(workflow, REGISTRY)

    assert plan.loops["ticks"].policy.until == "done.result"
    loops = {loop["name"]: loop for loop in plan.to_json()["loops"]}
    assert loops["ticks"]["policy"]["until"] == "done.result"


def test_until_may_name_the_producer_itself_or_any_json_output() -> None:
    assert issues_for("ticks.value") == []
    assert issues_for("later.value") == []


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        (
            "nope.result",
            "until 'nope.result' names no node of this workflow; name an output "
            "of a node of loop 'ticks' (its nodes: ticks, done, snap, later)",
        ),
        ("limit.value", "node 'limit' (Constant) is in the main stage, not in loop 'ticks'"),
        ("show.value", "node 'show' (Preview) is in loop 'other', not in loop 'ticks'"),
        ("done.value", "node 'done' (Compare) has no output port 'value'; its outputs are: result"),
        ("snap.image", "output snap.image is Artifact[image/*], which is never falsy"),
    ],
)
def test_a_wrong_until_is_refused_with_one_message_at_its_line(until: str, expected: str) -> None:
    issues = issues_for(until)

    assert len(issues) == 1, issues
    message, line = issues[0]
    assert message.startswith(f"loops: 'ticks': until '{until}'")
    assert expected in message
    assert line == UNTIL_LINE


def test_until_on_a_non_blocking_node_is_refused_since_the_iteration_does_not_wait() -> None:
    text = LOOP.replace("UNTIL", "snap.flag").replace(
        "{id: snap, type: Snapshot}", "{id: snap, type: Snapshot, blocking: false}"
    )

    issues = validate(Workflow.loads(text), REGISTRY)

    assert [i.line for i in issues] == [UNTIL_LINE]
    assert "is non-blocking (or downstream of a non-blocking node)" in issues[0].message


def test_until_that_is_not_node_dot_port_is_a_shape_error_at_its_line() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        Workflow.loads(LOOP.replace("UNTIL", "done"))

    (issue,) = caught.value.issues
    assert "'done' is not of the form node.port" in issue.message
    assert issue.line == UNTIL_LINE


COMMENTED = """\
name: notes
nodes:
  - {id: about, type: Comment, config: {text: "squares of 0..2"}}
  - {id: ticks, type: Range, config: {stop: 3}}
  - {id: out, type: Output, config: {name: values}}
edges:
  - {from: ticks.value, to: out.value}
"""


def test_a_comment_is_in_no_loop_and_kept_by_the_plan_as_a_note() -> None:
    plan = compile_workflow(Workflow.loads(COMMENTED), REGISTRY)

    assert "about" not in plan.nodes
    assert all("about" not in loop.nodes for loop in plan.all_loops())
    assert dict(plan.comments) == {"about": "squares of 0..2"}
    assert plan.to_json()["comments"] == [{"id": "about", "text": "squares of 0..2"}]


def test_a_comment_survives_the_load_and_save_round_trip() -> None:
    workflow = Workflow.loads(COMMENTED)

    again = Workflow.loads(workflow.to_yaml())

    assert again == workflow
    assert again.node("about").config == {"text": "squares of 0..2"}


def test_a_comment_has_no_ports_so_an_edge_to_it_is_refused() -> None:
    text = COMMENTED + "  - {from: ticks.value, to: about.text}\n"

    (issue,) = validate(Workflow.loads(text), REGISTRY)

    assert "node 'about' (Comment) has no input port 'text'; its inputs are: none" in issue.message


def test_a_comment_with_run_options_is_refused_naming_the_option() -> None:
    text = COMMENTED.replace('"squares of 0..2"}}', '"x"}, retry: {attempts: 2}}')

    (issue,) = validate(Workflow.loads(text), REGISTRY)

    assert issue.message == (
        "node 'about' (Comment) is a comment, which never runs, so `retry` means nothing "
        "here; remove it"
    )
    assert issue.line == 3
