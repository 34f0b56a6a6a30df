"""The planner: a validated workflow becomes an immutable execution plan."""

from orchestrator.planner.plan import (
    InputBinding,
    InputPlan,
    LoopPlan,
    OutputPlan,
    Plan,
    PlannedNode,
    QueueEndpoint,
    QueuePlan,
    Route,
)
from orchestrator.planner.planner import build_plan, compile_workflow

__all__ = [
    "InputBinding",
    "InputPlan",
    "LoopPlan",
    "OutputPlan",
    "Plan",
    "PlannedNode",
    "QueueEndpoint",
    "QueuePlan",
    "Route",
    "build_plan",
    "compile_workflow",
]
