"""Validation of ``Comment`` nodes: notes that never run take no run options."""

from __future__ import annotations

from nodes.base import Role
from orchestrator.validation.checker import Checker, Graph

RUN_OPTIONS = ("retry", "timeout_s", "cache", "queue", "blocking")
"""Entry fields that only mean something for a node that runs."""


def check_comments(checker: Checker, graph: Graph) -> None:
    """A ``Comment`` entry sets none of the options of a node that runs."""
    for at in graph.special:
        node = graph.nodes[at]
        if node.node_type.role is not Role.COMMENT:
            continue
        for option in RUN_OPTIONS:
            if getattr(node.spec, option) is not None:
                checker.node_issue(
                    node.position,
                    f"node {node.label()} is a comment, which never runs, so `{option}` "
                    "means nothing here; remove it",
                    option,
                )
