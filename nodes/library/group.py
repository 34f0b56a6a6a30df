"""The group node: a sub-workflow mapped over a list, in parallel."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nodes.base import Node, NodeConfig, Ports, Role
from nodes.context import RunContext
from nodes.errors import NodeDefinitionError


class Group(Node):
    """Run a sub-workflow once per item of a list, in parallel, and list the results.

    ``workflow`` is a nested workflow definition in the same format as a
    workflow file. For each item, the sub-workflow's ``Input`` node named
    ``input`` receives the item and its ``Output`` node named ``output`` gives
    the result; ``results`` keeps the order of ``items``. At most
    ``max_parallel`` sub-runs are in flight at once (unbounded when unset).

    The scheduler expands and schedules the sub-runs (its role says so);
    ``run`` only raises if called directly.
    """

    role = Role.GROUP
    subworkflow_field = "workflow"

    class Config(NodeConfig):
        workflow: dict[str, Any] = Field(
            description="The sub-workflow, written like a workflow file (name, nodes, edges)"
        )
        input: str = Field(
            default="item", min_length=1, description="Name of the sub-workflow Input fed each item"
        )
        output: str = Field(
            default="result",
            min_length=1,
            description="Name of the sub-workflow Output read as each result",
        )
        max_parallel: int | None = Field(
            default=None, ge=1, description="Most sub-runs in flight at once; unset is no limit"
        )

    class Inputs(Ports):
        items: list[Any] = Field(description="One sub-workflow run per item")

    class Outputs(Ports):
        results: list[Any] = Field(description="Each run's output, in the order of items")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        raise NodeDefinitionError(
            "Group is driven by the engine, which runs its sub-workflow per item; "
            "it cannot run on its own (run the workflow through an engine, `segue run`)"
        )
