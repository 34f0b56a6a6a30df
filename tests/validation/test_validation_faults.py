"""Every validation fault of DESIGN section 2: one located message naming the culprit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

from nodes import Node, Ports, Producer
from nodes.artifacts import Artifact, Mime
from nodes.library import builtin_registry
from nodes.registry import NodeRegistry
from orchestrator.errors import Issue, WorkflowInvalid
from orchestrator.model import Workflow
from orchestrator.validation import Limits, ValidatedWorkflow, check, validate

SENSOR = Path(__file__).resolve().parents[2] / "examples" / "sensor.yaml"
BUILTINS = builtin_registry()


class ShowImage(Node):
    """Takes an image artifact (a port accepting ``image/*`` only)."""

    class Inputs(Ports):
        image: Annotated[Artifact, Mime("image/*")]


class Countdown(Producer):
    """A producer with an input, so that an edge can feed it."""

    class Inputs(Ports):
        n: int

    class Outputs(Ports):
        value: int


CUSTOM = builtin_registry().copy()
CUSTOM.register(ShowImage)
CUSTOM.register(Countdown)


def flow(nodes: str, edges: str = "", tail: str = "") -> str:
    """A YAML workflow file written from a compact spec.

    Entries are separated by `` | ``. A node is ``id: Type`` with an optional
    config: ``{…}`` is written as given, ``key: value; key: value`` as a block,
    one key a line. An edge is ``a.x -> b.y`` with optional ``, key: value`` options.
    """
    lines = ["name: flow", "nodes:"]
    for entry in nodes.split(" | "):
        node_id, _, rest = entry.partition(": ")
        node_type, _, config = rest.partition(" ")
        lines += [f"  - id: {node_id}", f"    type: {node_type}"]
        if config.startswith("{"):
            lines.append(f"    config: {config}")
        elif config:
            lines += ["    config:", *(f"      {item}" for item in config.split("; "))]
    if edges:
        lines.append("edges:")
    for entry in edges.split(" | ") if edges else ():
        source, _, rest = entry.partition(" -> ")
        target, _, options = rest.partition(", ")
        lines.append(f"  - {{from: {source}, to: {target}" + (f", {options}}}" if options else "}"))
    return "\n".join(lines) + "\n" + tail


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of ``text`` holding ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return found[nth - 1]


def issues_of(
    text: str, registry: NodeRegistry = BUILTINS, limits: Limits | None = None
) -> list[Issue]:
    return validate(Workflow.loads(text, source="flow.yaml"), registry, limits)


def only_issue(text: str, registry: NodeRegistry = BUILTINS) -> Issue:
    issues = issues_of(text, registry)
    assert len(issues) == 1, [i.message for i in issues]
    assert issues[0].source == "flow.yaml"
    return issues[0]


ONE_M = "one: Constant {value: 1} | m: Math {op: add}"
ABC = "ticks: Range {stop: 3} | a: Math {op: add} | b: Math {op: add} | c: Math {op: add}"
CYCLE = "a.result -> b.a | b.result -> c.a | c.result -> a.a"
FEED_ABC = " | ticks.value -> a.b | ticks.value -> b.b | ticks.value -> c.b"
TWO_LOOPS = "r1: Range {stop: 2} | r2: Range {stop: 2} | a: Math {op: add} | b: Math {op: add}"


def test_an_unknown_node_type_is_named_with_a_close_match_suggested() -> None:
    text = flow("a: Maht")
    issue = only_issue(text)
    assert issue.node == "a" and issue.line == line_of(text, "type: Maht")
    assert "unknown node type 'Maht'" in issue.message
    assert "did you mean 'Math'" in issue.message


def test_an_unknown_output_port_is_named_with_the_known_outputs() -> None:
    text = flow(ONE_M, "one.val -> m.a | one.value -> m.b")
    issue = only_issue(text)
    assert issue.edge == "one.val -> m.a" and issue.node == "one"
    assert issue.line == line_of(text, "one.val,")
    assert "no output port 'val'" in issue.message and "its outputs are: value" in issue.message


def test_an_unknown_input_port_is_named_with_the_known_inputs() -> None:
    text = flow(ONE_M, "one.value -> m.a | one.value -> m.b | one.value -> m.z")
    issue = only_issue(text)
    assert issue.edge == "one.value -> m.z" and issue.node == "m"
    assert issue.line == line_of(text, "to: m.z")
    assert "no input port 'z'" in issue.message and "its inputs are: a, b" in issue.message


def test_an_edge_naming_a_missing_node_is_reported_on_the_edge() -> None:
    text = flow("ticks: Range {stop: 3}", "ticks.value -> ghost.value")
    issue = only_issue(text)
    assert issue.edge == "ticks.value -> ghost.value" and issue.line == line_of(text, "ghost")
    assert "'ghost' is not a node of this workflow" in issue.message


def test_a_duplicate_id_is_reported_at_the_second_entry_naming_the_first_line() -> None:
    text = flow("one: Constant {value: 1} | one: Constant {value: 2}")
    issue = only_issue(text)
    assert issue.node == "one" and issue.line == 6
    assert "duplicate node id 'one' (first at line 3)" in issue.message


def test_a_required_input_with_no_edge_and_no_default_is_named() -> None:
    text = flow(
        "one: Constant {value: 1} | m: Math {op: add} | nap: Sleep {seconds: 0}", "one.value -> m.a"
    )
    issue = only_issue(text)
    assert issue.node == "m" and issue.line == line_of(text, "id: m")
    assert "required input 'b' has no edge and no default" in issue.message


def test_two_edges_into_one_input_are_refused_at_the_second_edge() -> None:
    text = flow(ONE_M, "one.value -> m.a | one.value -> m.b | one.value -> m.b")
    issue = only_issue(text)
    assert issue.node == "m" and issue.line == line_of(text, "to: m.b", nth=2)
    assert "input m.b already has an edge (one.value -> m.b)" in issue.message


def test_incompatible_port_types_name_both_ports_and_their_types() -> None:
    text = flow(
        "one: Constant {value: 1} | f: Format {template: '{value}'} | m: Math {op: add}",
        "one.value -> f.value | f.text -> m.a | one.value -> m.b",
    )
    issue = only_issue(text)
    assert issue.edge == "f.text -> m.a" and issue.line == line_of(text, "f.text")
    assert "output f.text is str but input m.a takes int | float" in issue.message


def test_incompatible_mime_types_are_refused_and_wildcards_that_overlap_accepted() -> None:
    text = flow(
        "words: Constant {value: hi} | w: WriteText | s: ShowImage",
        "words.value -> w.text | w.file -> s.image",
    )
    issue = only_issue(text, CUSTOM)
    assert issue.edge == "w.file -> s.image" and issue.line == line_of(text, "w.file")
    assert "produces text/* but input s.image accepts image/*" in issue.message
    any_file = flow("r: ReadFile {path: a.png} | s: ShowImage", "r.file -> s.image")
    assert issues_of(any_file, CUSTOM) == []


def test_a_cycle_without_a_feedback_edge_is_named_node_by_node() -> None:
    text = flow(ABC, CYCLE + FEED_ABC)
    issue = only_issue(text)
    assert issue.node == "a" and issue.line == line_of(text, "id: a")
    assert "cycle a -> b -> c -> a has no feedback edge" in issue.message
    assert "`feedback: true`" in issue.message


def test_a_cycle_broken_by_a_feedback_edge_is_valid() -> None:
    text = flow(ABC, CYCLE + ", feedback: true, initial: 0" + FEED_ABC)
    assert issues_of(text) == []


def test_a_feedback_edge_crossing_from_one_loop_to_another_is_refused() -> None:
    feedback = "a.result -> b.b, feedback: true, initial: 0"
    text = flow(TWO_LOOPS, f"r1.value -> a.a | r1.value -> a.b | r2.value -> b.a | {feedback}")
    issue = only_issue(text)
    assert issue.edge == "a.result -> b.b (feedback)" and issue.line == line_of(text, "a.result")
    assert "crosses from loop 'r1' to loop 'r2'" in issue.message


def test_a_feedback_edge_in_the_main_stage_is_refused() -> None:
    text = flow(ONE_M, "one.value -> m.a | m.result -> m.b, feedback: true, initial: 0")
    issue = only_issue(text)
    assert issue.edge == "m.result -> m.b (feedback)" and issue.line == line_of(text, "m.result")
    assert "is in the main stage, which runs once" in issue.message


def test_a_node_fed_by_two_loops_is_told_to_connect_them_through_a_queue() -> None:
    text = flow(TWO_LOOPS, "r1.value -> a.a | r2.value -> a.b | r1.value -> b.a | r1.value -> b.b")
    issue = only_issue(text)
    assert issue.node == "a" and issue.line == line_of(text, "id: a")
    assert "is fed by two loops, 'r1' and 'r2'" in issue.message
    assert "connect the loops through a queue" in issue.message


def test_a_producer_fed_by_a_loop_is_refused_and_one_fed_by_the_main_stage_accepted() -> None:
    text = flow("ticks: Range {stop: 3} | down: Countdown", "ticks.value -> down.n")
    issue = only_issue(text, CUSTOM)
    assert issue.node == "down" and issue.line == line_of(text, "id: down")
    assert "producer 'down' (Countdown) is fed by loop 'ticks'" in issue.message
    from_main = flow("one: Constant {value: 1} | down: Countdown", "one.value -> down.n")
    assert issues_of(from_main, CUSTOM) == []


@pytest.mark.parametrize(
    ("entry", "needle", "expected"),
    [
        ("n: Math op: pow2", "op: pow2", "(Math): bad config op: Input should be 'add', 'sub'"),
        ("n: Range start: 1", "config:", "(Range): bad config stop: Field required"),
        ("n: Range stop: 3; step: 0", "step: 0", "(Range): bad config step: Value error"),
    ],
    ids=["math-op-pow2", "range-without-stop", "range-step-zero"],
)
def test_a_bad_config_gives_the_pydantic_message_at_the_config_keys_line(
    entry: str, needle: str, expected: str
) -> None:
    text = flow(entry)
    issue = only_issue(text)
    assert issue.node == "n" and issue.line == line_of(text, needle)
    assert f"node 'n' {expected}" in issue.message


def test_a_workflow_over_the_node_limit_is_refused_naming_the_limit() -> None:
    text = flow("one: Constant {value: 1} | two: Constant {value: 2} | six: Constant {value: 6}")
    (issue,) = issues_of(text, limits=Limits(max_nodes=2))
    assert "workflow has 3 nodes, over the limit of 2" in issue.message and issue.line == 2
    assert issues_of(text, limits=Limits(max_nodes=3)) == []


def test_a_workflow_over_the_edge_limit_is_refused_and_the_defaults_are_documented() -> None:
    text = flow(ONE_M, "one.value -> m.a | one.value -> m.b")
    (issue,) = issues_of(text, limits=Limits(max_edges=1))
    assert "workflow has 2 edges, over the limit of 1" in issue.message
    assert Limits().max_nodes == 10_000


def test_a_loops_key_that_is_not_a_producer_is_refused_listing_the_producers() -> None:
    loops = "loops:\n  one: {pool: thread}\n  ghost: {}\n  ticks: {}\n"
    text = flow("one: Constant {value: 1} | ticks: Range {stop: 3}", tail=loops)
    first, second = issues_of(text)
    assert first.node == "one" and first.line == line_of(text, "one: {pool")
    assert "loops: 'one' is not a producer node" in first.message
    assert "(producers: ticks)" in first.message
    assert second.line == line_of(text, "ghost") and "'ghost' names no node" in second.message


def test_two_outputs_with_one_name_are_refused_at_the_second() -> None:
    text = flow(
        "one: Constant {value: 1} | o1: Output {name: res} | o2: Output name: res",
        "one.value -> o1.value | one.value -> o2.value",
    )
    issue = only_issue(text)
    assert issue.node == "o2" and issue.line == line_of(text, "      name: res")
    assert "output name 'res' is already used by node 'o1'" in issue.message


def test_a_job_scoped_queue_reader_with_no_writer_is_refused() -> None:
    text = flow("inbox: QueueReader queue: jobs")
    issue = only_issue(text)
    assert issue.node == "inbox" and issue.line == line_of(text, "queue: jobs")
    assert "reads job-scoped queue 'jobs', which no QueueWriter" in issue.message
    assert "`scope: global`" in issue.message


def test_a_global_queue_reader_needs_no_writer_and_a_written_queue_is_fine() -> None:
    assert issues_of(flow("inbox: QueueReader {queue: jobs, scope: global}")) == []
    text = flow(
        "ticks: Range {stop: 3} | w: QueueWriter {queue: jobs} | inbox: QueueReader {queue: jobs}",
        "ticks.value -> w.value",
    )
    assert issues_of(text) == []


def test_one_queue_name_used_with_both_scopes_is_refused() -> None:
    writer = "w: QueueWriter {queue: jobs, scope: global}"
    text = flow(
        f"ticks: Range {{stop: 3}} | {writer} | inbox: QueueReader {{queue: jobs}}",
        "ticks.value -> w.value",
    )
    issue = only_issue(text)
    assert issue.node == "inbox" and issue.line == line_of(text, "id: inbox") + 2
    assert "with scope 'job', but node 'w' uses it with scope 'global'" in issue.message


GROUP = """\
name: flow
nodes:
  - id: items
    type: Constant
    config: {value: [1, 2]}
  - id: g
    type: Group
    config:  # of the group
      input: item
      workflow:
        name: sub
        nodes:
          - {id: i, type: Input, config: {name: item}}
          - {id: o, type: Output, config: {name: result}}
        edges:
          - {from: i.value, to: o.value}
edges:
  - {from: items.value, to: g.items}
"""
SUB_NODES = "          - {id: o, type: Output, config: {name: result}}\n"
NOPE = SUB_NODES + "          - {id: x, type: Nope}\n"
RANGE = SUB_NODES + "          - {id: r, type: Range, config: {stop: 2}}\n"


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        (SUB_NODES, NOPE, "workflow:", "node 'x': unknown node type 'Nope'"),
        (
            "input: item",
            "input: nope",
            "input: nope",
            "no Input node named 'nope' (config `input`); its Input names are: item",
        ),
        (SUB_NODES, RANGE, "# of the group", "has producers (r); a sub-workflow runs once per"),
    ],
    ids=["unknown-type-inside", "missing-input", "producer-inside"],
)
def test_a_group_sub_workflow_fault_is_reported_on_the_group_node(
    old: str, new: str, needle: str, expected: str
) -> None:
    assert issues_of(GROUP) == []
    text = GROUP.replace(old, new)
    issue = only_issue(text)
    assert issue.node == "g" and issue.line == line_of(text, needle)
    assert issue.message.startswith("node 'g' (Group) sub-workflow: ")
    assert expected in issue.message


LIMIT = SUB_NODES + "          - {id: limit, type: Input, config: {name: limit}}\n"
JOB_EDGES = "\nedges:\n"  # the outer workflow's (the sub-workflow's are indented)


def test_a_group_sub_workflow_input_that_nothing_feeds_is_refused_on_its_line() -> None:
    text = GROUP.replace(SUB_NODES, LIMIT)
    issue = only_issue(text)
    assert issue.node == "g" and issue.line == line_of(text, "id: limit")
    assert issue.message == (
        "node 'g' (Group) sub-workflow: Input node 'limit' has no default, so it would read "
        "null: only the Input named 'item' (the group's `input`) receives each item, and no "
        "required input of the job is named 'limit'; give node 'limit' a `default`"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (LIMIT, LIMIT.replace("{name: limit}", "{name: limit, default: 3}")),
        (LIMIT, LIMIT.replace("{name: limit}", "{name: limit, default: null}")),
        (JOB_EDGES, "\n  - {id: lim, type: Input, config: {name: limit}}" + JOB_EDGES),
    ],
    ids=["a-default", "a-null-default", "a-required-job-input-of-its-name"],
)
def test_a_group_sub_workflow_input_with_a_default_or_a_required_job_input_is_fed(
    old: str, new: str
) -> None:
    text = GROUP.replace(SUB_NODES, LIMIT).replace(old, new)
    assert issues_of(text) == []


def test_a_job_input_with_a_default_does_not_feed_a_group_sub_workflow_input() -> None:
    # The job may be submitted without it, and the sub-workflow's Input would read null.
    job_limit = "\n  - {id: lim, type: Input, config: {name: limit, default: 3}}"
    text = GROUP.replace(SUB_NODES, LIMIT).replace(JOB_EDGES, job_limit + JOB_EDGES)
    issue = only_issue(text)
    assert issue.node == "g" and issue.line == line_of(text, "id: limit")
    assert "Input node 'limit' has no default" in issue.message


def test_a_feedback_edge_into_a_required_input_needs_initial() -> None:
    text = flow(
        "ticks: Range {stop: 3} | acc: Math {op: add}",
        "ticks.value -> acc.a | acc.result -> acc.b, feedback: true",
    )
    issue = only_issue(text)
    assert issue.edge == "acc.result -> acc.b (feedback)" and issue.node == "acc"
    assert issue.line == line_of(text, "feedback: true")
    assert "needs `initial`" in issue.message and "required input 'b'" in issue.message


def test_an_initial_that_does_not_fit_the_port_type_is_refused() -> None:
    text = flow(
        "ticks: Range {stop: 3} | acc: Math {op: add}",
        "ticks.value -> acc.a | acc.result -> acc.b, feedback: true, initial: x",
    )
    issue = only_issue(text)
    assert issue.edge == "acc.result -> acc.b (feedback)" and issue.line == line_of(text, "x}")
    assert "initial 'x' does not fit acc.b" in issue.message


def test_every_fault_is_collected_in_one_pass_sorted_by_line() -> None:
    nodes = "one: Constant {value: 1} | a: Maht | one: Constant {value: 2} | m: Math {op: pow2}"
    text = flow(
        nodes + " | f: Format {template: '{value}'}",
        "one.value -> f.value | one.value -> f.value",
        tail="loops:\n  one: {}\n",
    )
    issues = issues_of(text)
    assert [i.line for i in issues] == [
        line_of(text, "Maht"),
        line_of(text, "id: one", nth=2),
        line_of(text, "pow2"),
        line_of(text, "to: f.value", nth=2),
        line_of(text, "  one: {}"),
    ]
    assert [i.node for i in issues] == ["a", "one", "m", "f", "one"]


def test_issues_come_sorted_by_line_whatever_the_order_checks_run_in() -> None:
    text = flow(
        "ticks: Range {stop: 3} | acc: Math {op: add} | o: Output {name: res}",
        "acc.result -> acc.b, feedback: true | ticks.value -> acc.a",
        tail="loops:\n  nope: {}\n",
    )
    lines = [i.line for i in issues_of(text)]
    assert lines == [line_of(text, "id: o"), line_of(text, "feedback"), line_of(text, "nope")]


def test_the_design_example_validates_clean() -> None:
    workflow = Workflow.load(SENSOR)
    assert validate(workflow, BUILTINS) == []
    validated = check(workflow, BUILTINS)
    assert isinstance(validated, ValidatedWorkflow)
    assert [validated.loop_name(at) for at in validated.order] == ["ticks"] * 4


def test_check_raises_workflow_invalid_carrying_every_issue() -> None:
    workflow = Workflow.loads(flow("a: Maht | m: Math {op: add}"), source="flow.yaml")
    with pytest.raises(WorkflowInvalid) as caught:
        check(workflow, BUILTINS)
    assert caught.value.issues == validate(workflow, BUILTINS)
    assert len(caught.value.issues) == 3 and caught.value.name == "flow"
    assert "flow.yaml:4: node 'a': unknown node type 'Maht'" in str(caught.value)
