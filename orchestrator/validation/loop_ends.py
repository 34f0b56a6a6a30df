"""Validation of loops that end themselves: ``until: node.port`` (DESIGN 3.15).

The output ``until`` names must belong to a blocking node of that very loop
(the iteration waits for it, so its value is known when the iteration is
done) and be able to be falsy: a ``bool`` port is the intended use, any other
JSON port is checked for truthiness, and a port whose values are always truthy
(an artifact, a pydantic model) is refused, since it would end every loop
after its first iteration.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from orchestrator.validation.checker import Checker, Graph


def check_until(
    checker: Checker, graph: Graph, loop_of: list[int | None], detached: list[bool]
) -> None:
    """Every loop's ``until`` names a blocking output of that loop that can be falsy."""
    for name, policy in checker.workflow.loops.items():
        if policy.until is None:
            continue
        producer = graph.index.get(name)
        if producer is None or producer < 0 or not graph.nodes[producer].is_producer:
            continue  # the loops section's own check reports the key
        node_id, port = policy.until_node, policy.until_port
        assert node_id is not None and port is not None
        where = ("loops", name, "until")
        head = f"loops: {name!r}: until {policy.until!r}"
        at = graph.index.get(node_id)
        if at is None:
            checker.issue(
                f"{head} names no node of this workflow; name an output of a node of "
                f"loop {name!r} ({_members(graph, loop_of, producer)})",
                where,
                node=name,
            )
            continue
        if at < 0:
            continue  # the node's own fault was reported
        node = graph.nodes[at]
        if loop_of[at] != producer:
            other = loop_of[at]
            place = "the main stage" if other is None else f"loop {graph.nodes[other].id!r}"
            checker.issue(
                f"{head}: node {node.label()} is in {place}, not in loop {name!r}; "
                f"name an output of a node of loop {name!r} "
                f"({_members(graph, loop_of, producer)})",
                where,
                node=name,
            )
            continue
        out = node.outputs.get(port)
        if out is None:
            known = ", ".join(node.outputs) or "none"
            checker.issue(
                f"{head}: node {node.label()} has no output port {port!r}; its outputs are: "
                f"{known}",
                where,
                node=name,
            )
            continue
        if detached[at]:
            checker.issue(
                f"{head}: node {node.label()} is non-blocking (or downstream of a non-blocking "
                "node), so its iteration does not wait for it and its value cannot end the "
                "loop; name a blocking node's output",
                where,
                node=name,
            )
            continue
        if _always_truthy(out.annotation):
            checker.issue(
                f"{head}: output {policy.until} is {out.type_label}, which is never falsy, so "
                "the loop would end after its first iteration; name a bool output (a "
                "Compare node's `result`, say)",
                where,
                node=name,
            )


def _members(graph: Graph, loop_of: list[int | None], producer: int) -> str:
    names = [graph.nodes[at].id for at, loop in enumerate(loop_of) if loop == producer]
    shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    return f"its nodes: {shown}"


def _always_truthy(annotation: Any) -> bool:
    """Whether every value of a port typed ``annotation`` is truthy as JSON.

    A pydantic model (an artifact reference included) is a JSON object with
    fields, never empty; anything else (numbers, strings, containers, unions,
    ``Any``) may be falsy and is checked at run time.
    """
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and any(f.is_required() for f in annotation.model_fields.values())
    )
