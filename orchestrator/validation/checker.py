"""The state of one validation pass: resolved nodes, usable edges and issues."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodes.base import Node, NodeConfig
from nodes.introspect import PortSpec, input_ports, output_ports
from orchestrator.errors import Issue
from orchestrator.model.spec import EdgeSpec, NodeSpec
from orchestrator.model.workflow import Workflow

MAIN = "main"


@dataclass(frozen=True)
class Limits:
    """Size limits a workflow must respect.

    Attributes:
        max_nodes: Most nodes in one workflow (sub-workflows counted apart).
        max_edges: Most edges in one workflow.
        max_depth: Deepest nesting of sub-workflows (``Group``).
    """

    max_nodes: int = 10_000
    max_edges: int = 100_000
    max_depth: int = 8


@dataclass(frozen=True)
class ResolvedNode:
    """A node entry with its registered type and validated config."""

    spec: NodeSpec
    index: int
    node_type: type[Node]
    config: NodeConfig

    @property
    def id(self) -> str:
        """The node id."""
        return self.spec.id

    @property
    def inputs(self) -> Mapping[str, PortSpec]:
        """The type's input ports."""
        return input_ports(self.node_type)

    @property
    def outputs(self) -> Mapping[str, PortSpec]:
        """The type's output ports."""
        return output_ports(self.node_type)

    @property
    def is_producer(self) -> bool:
        """Whether the node roots a loop."""
        return self.node_type.kind == "producer"

    @property
    def blocking(self) -> bool:
        """The entry's ``blocking`` when given, else the type's."""
        return self.spec.blocking if self.spec.blocking is not None else self.node_type.blocking

    def label(self) -> str:
        """``'id' (Type)`` for messages."""
        return f"{self.spec.id!r} ({self.spec.type})"


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

    def issue(self, message: str, path: tuple[str | int, ...] = (), node: str | None = None) -> None:
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


@dataclass
class Graph:
    """The usable part of a workflow after node and edge checks."""

    nodes: dict[str, ResolvedNode]
    order: list[str]
    edges: list[tuple[int, EdgeSpec]] = field(default_factory=list)
    feeds: dict[str, dict[str, tuple[int, EdgeSpec]]] = field(default_factory=dict)
    successors: dict[str, list[str]] = field(default_factory=dict)
    predecessors: dict[str, list[str]] = field(default_factory=dict)
