"""Building a workflow in Python: the same model a file produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from orchestrator.model.spec import EdgeSpec, LoopPolicy, NodeSpec
from orchestrator.model.workflow import Workflow

_UNSET: Any = object()


@dataclass(frozen=True)
class NodeHandle:
    """A node added to a builder; ``handle["port"]`` names one of its ports."""

    id: str

    def __getitem__(self, port: str) -> str:
        return f"{self.id}.{port}"


class WorkflowBuilder:
    """Assemble a :class:`Workflow` step by step.

    Example::

        b = WorkflowBuilder("sensor-demo")
        ticks = b.node("ticks", "Range", config={"stop": 5})
        square = b.node("square", "Math", config={"op": "mul"})
        b.edge(ticks["value"], square["a"]).edge(ticks["value"], square["b"])
        b.loop("ticks", on_error="continue")
        workflow = b.build()
    """

    def __init__(self, name: str, description: str | None = None) -> None:
        self._name = name
        self._description = description
        self._nodes: list[NodeSpec] = []
        self._edges: list[EdgeSpec] = []
        self._loops: dict[str, LoopPolicy] = {}

    def node(
        self, node_id: str, node_type: str, config: dict[str, Any] | None = None, **options: Any
    ) -> NodeHandle:
        """Add a node; ``options`` are the entry's fields (retry, timeout_s, cache, …)."""
        fields: dict[str, Any] = {"id": node_id, "type": node_type, **options}
        if config is not None:
            fields["config"] = config
        self._nodes.append(NodeSpec.model_validate(fields))
        return NodeHandle(node_id)

    def edge(
        self, source: str, target: str, feedback: bool = False, initial: JsonValue = _UNSET
    ) -> WorkflowBuilder:
        """Connect ``source`` (``node.port``) to ``target``; returns the builder."""
        fields: dict[str, Any] = {"from": source, "to": target}
        if feedback:
            fields["feedback"] = True
        if initial is not _UNSET:
            fields["initial"] = initial
        self._edges.append(EdgeSpec.model_validate(fields))
        return self

    def loop(self, producer_id: str, **policy: Any) -> WorkflowBuilder:
        """Set the policy of the loop rooted at ``producer_id``; returns the builder."""
        self._loops[producer_id] = LoopPolicy.model_validate(policy)
        return self

    def build(self) -> Workflow:
        """The workflow, as :meth:`Workflow.from_dict` would have built it."""
        fields: dict[str, Any] = {"name": self._name, "nodes": self._nodes}
        if self._description is not None:
            fields["description"] = self._description
        if self._edges:
            fields["edges"] = self._edges
        if self._loops:
            fields["loops"] = self._loops
        return Workflow.model_validate(fields)
