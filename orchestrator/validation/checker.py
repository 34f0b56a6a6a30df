"""The state of one validation pass: resolved nodes, usable edges and issues."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from nodes.base import Node, NodeConfig, Role
from nodes.introspect import PortSpec, input_ports, output_ports
from orchestrator.errors import Issue
from orchestrator.model.limits import MAX_EDGES, MAX_GROUP_DEPTH, MAX_NODES
from orchestrator.model.spec import EdgeSpec, NodeSpec
from orchestrator.model.workflow import Workflow

INVALID = -1
SPECIAL_ROLES = frozenset(
    {Role.INPUT, Role.OUTPUT, Role.QUEUE_WRITER, Role.QUEUE_READER, Role.COMMENT}
)
"""Roles of the node types later validation steps look at."""


@dataclass(frozen=True)
class Limits:
    """Size limits a workflow must respect (defaults: :mod:`orchestrator.model.limits`).

    Attributes:
        max_nodes: Most nodes in one workflow (sub-workflows counted apart).
        max_edges: Most edges in one workflow.
        max_depth: Deepest nesting of sub-workflows (``Group``).
    """

    max_nodes: int = MAX_NODES
    max_edges: int = MAX_EDGES
    max_depth: int = MAX_GROUP_DEPTH


class ResolvedNode(NamedTuple):
    """A node entry with its registered type and validated config.

    A named tuple with the derived facts stored, since validation and
    planning read them for every node of workflows up to 100,000 nodes.
    """

    spec: NodeSpec
    position: int
    node_type: type[Node]
    config: NodeConfig
    id: str
    is_producer: bool
    blocking: bool

    @classmethod
    def of(
        cls, spec: NodeSpec, position: int, node_type: type[Node], config: NodeConfig
    ) -> ResolvedNode:
        """Resolve ``spec``: the entry's ``blocking`` wins over the type's."""
        blocking = spec.blocking if spec.blocking is not None else node_type.blocking
        return cls(
            spec, position, node_type, config, spec.id, node_type.kind == "producer", blocking
        )

    @property
    def inputs(self) -> Mapping[str, PortSpec]:
        """The type's input ports."""
        return input_ports(self.node_type)

    @property
    def outputs(self) -> Mapping[str, PortSpec]:
        """The type's output ports."""
        return output_ports(self.node_type)

    def label(self) -> str:
        """``'id' (Type)`` for messages."""
        return f"{self.id!r} ({self.spec.type})"


@dataclass
class Checker:
    """Collects located issues while the validation steps run."""

    workflow: Workflow
    prefix: str = ""
    issues: list[Issue] = field(default_factory=list)

    def node_issue(self, index: int, message: str, *path: str | int) -> None:
        """Record an issue about the node at ``index`` (``path`` inside its entry)."""
        spec = self.workflow.nodes[index]
        self._add(message, ("nodes", index, *path), node=spec.id)

    def edge_issue(self, index: int, message: str, node: str | None = None) -> None:
        """Record an issue about the edge at ``index``."""
        edge = self.workflow.edges[index]
        self._add(message, ("edges", index), node=node, edge=edge.label)

    def issue(
        self, message: str, path: tuple[str | int, ...] = (), node: str | None = None
    ) -> None:
        """Record an issue located by a source path."""
        self._add(message, path, node=node)

    def _add(
        self, message: str, path: tuple[str | int, ...], node: str | None, edge: str | None = None
    ) -> None:
        source = self.workflow.source
        self.issues.append(
            Issue(
                message=self.prefix + message,
                node=node,
                edge=edge,
                line=source.line_for(path),
                source=source.source,
            )
        )


class Feed(NamedTuple):
    """The edge feeding one input port, with its source already resolved."""

    position: int
    edge: EdgeSpec
    source: int
    source_port: str
    feedback: bool


@dataclass
class Graph:
    """The usable part of a workflow: resolved nodes numbered in declaration order.

    Attributes:
        nodes: Resolved nodes; a node's number is its position here.
        index: Node id to number; ``INVALID`` for a declared node that failed its checks.
        edges: Usable edges as (position in the file, edge).
        feeds: Per node number, its fed input ports: port to :class:`Feed`.
        successors: Per node number, the numbers its non-feedback edges enter.
        predecessors: Per node number, the numbers its non-feedback inputs leave.
        broken_feeds: (node number, port) of inputs whose edge was reported as
            faulty, so they are not also reported as unconnected.
        special: Numbers of the few nodes later steps look at by kind
            (producers, inputs, outputs, queue nodes, groups), so those steps
            need not sweep every node of a large workflow.
    """

    nodes: list[ResolvedNode]
    index: dict[str, int]
    edges: list[tuple[int, EdgeSpec]]
    feeds: list[dict[str, Feed]]
    successors: list[list[int]]
    predecessors: list[list[int]]
    broken_feeds: set[tuple[int, str]] = field(default_factory=set)
    special: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, nodes: list[ResolvedNode], index: dict[str, int]) -> Graph:
        """An edgeless graph over ``nodes``; ``index`` maps ids to their numbers."""
        size = len(nodes)
        return cls(
            nodes=nodes,
            index=index,
            edges=[],
            feeds=[{} for _ in range(size)],
            successors=[[] for _ in range(size)],
            predecessors=[[] for _ in range(size)],
        )
