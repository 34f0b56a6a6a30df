"""The planner: a validated workflow becomes an immutable execution plan.

:data:`MAIN` names the plan's main stage wherever a loop name is expected.
"""

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
from orchestrator.validation import MAIN

__all__ = [
    "MAIN",
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
