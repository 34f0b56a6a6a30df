"""Validate a workflow in one pass, collecting every fault with its location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from nodes.base import Role
from nodes.context import MAIN
from nodes.registry import NodeRegistry
from orchestrator.errors import Issue, WorkflowError, WorkflowInvalid
from orchestrator.graph import gc_paused
from orchestrator.model.workflow import Workflow, shape_issues
from orchestrator.validation.checker import Checker, Graph, Limits, ResolvedNode
from orchestrator.validation.comments import check_comments
from orchestrator.validation.loop_ends import check_until
from orchestrator.validation.loops import (
    assign_loops,
    check_cycles,
    check_feedback,
    check_loop_section,
    check_outputs_and_queues,
    detached_nodes,
)
from orchestrator.validation.nodes_edges import (
    check_edges,
    check_nodes,
    check_required_inputs,
    check_size,
)


@dataclass(frozen=True)
class ValidatedWorkflow:
    """A workflow that passed validation, with what validation worked out.

    Node numbers are positions in ``graph.nodes``.

    Attributes:
        workflow: The workflow as written.
        graph: Resolved nodes and usable edges.
        order: Node numbers in a topological order of the non-feedback edges.
        loop_of: Per node number, its producer's number, or ``None`` in the main stage.
        detached: Per node number, whether its loop does not wait for it.
    """

    workflow: Workflow
    graph: Graph
    order: list[int]
    loop_of: list[int | None]
    detached: list[bool]

    def loop_name(self, at: int) -> str:
        """The loop name of node number ``at``: its producer's id or :data:`MAIN`."""
        loop = self.loop_of[at]
        return MAIN if loop is None else self.graph.nodes[loop].id


def validate(
    workflow: Workflow, registry: NodeRegistry, limits: Limits | None = None
) -> list[Issue]:
    """Every fault of ``workflow``, in file order; empty when it is valid."""
    with gc_paused():
        issues, _ = _run(workflow, registry, limits or Limits(), depth=0, prefix="")
    return issues


def check(
    workflow: Workflow, registry: NodeRegistry, limits: Limits | None = None
) -> ValidatedWorkflow:
    """Validate ``workflow`` and return what validation worked out.

    Raises:
        WorkflowInvalid: with every fault found.
    """
    with gc_paused():
        issues, validated = _run(workflow, registry, limits or Limits(), depth=0, prefix="")
    if issues or validated is None:
        raise WorkflowInvalid(issues, name=workflow.name)
    return validated


def _run(
    workflow: Workflow,
    registry: NodeRegistry,
    limits: Limits,
    depth: int,
    prefix: str,
    job_inputs: frozenset[str] | None = None,
) -> tuple[list[Issue], ValidatedWorkflow | None]:
    """Validate one workflow; ``job_inputs`` is ``None`` for the job's own (top-level) workflow,
    else the inputs every job of it carries (see :func:`_required_inputs`)."""
    checker = Checker(workflow, prefix=prefix)
    if not check_size(checker, limits):
        return checker.issues, None
    graph = check_nodes(checker, registry)
    check_edges(checker, graph)
    check_required_inputs(checker, graph)
    check_loop_section(checker, graph)
    check_outputs_and_queues(checker, graph)
    check_comments(checker, graph)
    if job_inputs is None:
        job_inputs = _required_inputs(graph)
    for at in graph.special:
        node = graph.nodes[at]
        if node.node_type.subworkflow_field:
            _check_subworkflow(checker, node, registry, limits, depth, job_inputs)
    validated = None
    order = check_cycles(checker, graph)
    if order is not None:
        loop_of = assign_loops(checker, graph, order)
        detached = detached_nodes(graph, order)
        check_feedback(checker, graph, loop_of)
        check_until(checker, graph, loop_of, detached)
        validated = ValidatedWorkflow(workflow, graph, order, loop_of, detached)
    issues = sorted(checker.issues, key=lambda i: (i.line is None, i.line or 0))
    return issues, validated


def _check_subworkflow(
    checker: Checker,
    node: ResolvedNode,
    registry: NodeRegistry,
    limits: Limits,
    depth: int,
    job_inputs: frozenset[str],
) -> None:
    field = node.node_type.subworkflow_field
    assert field is not None
    where = ("config", field)
    prefix = f"{checker.prefix}node {node.label()} sub-workflow: "
    if depth + 1 > limits.max_depth:
        checker.node_issue(
            node.position,
            f"node {node.label()}: sub-workflows nest deeper than the limit of "
            f"{limits.max_depth} levels of groups",
            *where,
        )
        return
    data: Any = getattr(node.config, field)
    try:
        sub = Workflow.model_validate(data)
    except ValidationError as exc:
        for issue in shape_issues(
            exc, data if isinstance(data, dict) else {}, checker.workflow.source
        ):
            checker.node_issue(node.position, prefix + issue.message, *where)
        return
    issues, validated = _run(sub, registry, limits, depth + 1, "", job_inputs)
    for issue in issues:
        checker.node_issue(node.position, prefix + issue.message, *where)
    if validated is not None:
        _check_group_boundary(checker, node, validated, prefix, job_inputs)


def _check_group_boundary(
    checker: Checker,
    node: ResolvedNode,
    sub: ValidatedWorkflow,
    prefix: str,
    job_inputs: frozenset[str],
) -> None:
    producers = [n.id for n in sub.graph.nodes if n.is_producer]
    if producers:
        checker.node_issue(
            node.position,
            prefix + f"has producers ({', '.join(producers)}); a sub-workflow "
            "runs once per item and cannot hold loops",
            "config",
        )
    input_found = True
    for side, kind, role in (("input", "Input", Role.INPUT), ("output", "Output", Role.OUTPUT)):
        wanted = getattr(node.config, side, None)
        if not isinstance(wanted, str):
            continue
        names = {
            getattr(n.config, "name", None) for n in sub.graph.nodes if n.node_type.role is role
        }
        if wanted not in names:
            checker.node_issue(
                node.position,
                prefix + f"has no {kind} node named {wanted!r} (config `{side}`); "
                f"its {kind} names are: {', '.join(sorted(str(n) for n in names)) or 'none'}",
                "config",
                side,
            )
            input_found = input_found and side != "input"
    if input_found:  # else naming the Input that takes the items is the fix to make first
        _check_group_inputs(checker, node, sub, prefix, job_inputs)


def _check_group_inputs(
    checker: Checker,
    node: ResolvedNode,
    sub: ValidatedWorkflow,
    prefix: str,
    job_inputs: frozenset[str],
) -> None:
    """Every ``Input`` of a sub-workflow is fed, or it would read null.

    Each run of the sub-workflow gets its item through the ``Input`` named by
    the group's ``input``; any other ``Input`` reads the job input of its name,
    else its ``default``.
    """
    fed = getattr(node.config, "input", None)
    field = node.node_type.subworkflow_field
    assert field is not None
    for at in sub.graph.special:
        member = sub.graph.nodes[at]
        if member.node_type.role is not Role.INPUT or _has_default(member):
            continue
        name = getattr(member.config, "name", member.id)
        if name == fed or name in job_inputs:
            continue
        receives = (
            f"only the Input named {fed!r} (the group's `input`) receives each item"
            if isinstance(fed, str)
            else "no Input receives the items"
        )
        checker.node_issue(
            node.position,
            prefix + f"Input node {member.id!r} has no default, so it would read null: "
            f"{receives}, and no required input of the job is named {name!r}; "
            f"give node {member.id!r} a `default`",
            "config",
            field,
            "nodes",
            member.position,
        )


def _has_default(node: ResolvedNode) -> bool:
    # A configured `default: null` is a default; a missing `default` is not.
    return "default" in node.config.model_fields_set


def _required_inputs(graph: Graph) -> frozenset[str]:
    """The inputs every job of this workflow carries: those no ``Input`` gives a default."""
    named: set[str] = set()
    defaulted: set[str] = set()
    for at in graph.special:
        node = graph.nodes[at]
        if node.node_type.role is Role.INPUT:
            name = getattr(node.config, "name", node.id)
            (defaulted if _has_default(node) else named).add(name)
    return frozenset(named - defaulted)


def validation_errors(exc: WorkflowError) -> list[Issue]:
    """The issues carried by any workflow error."""
    issues: list[Issue] = getattr(exc, "issues", [])
    return issues or [Issue(message=str(exc))]
