"""The workflow model: files and builders on one side, frozen models on the other."""

from orchestrator.model.builder import NodeHandle, WorkflowBuilder
from orchestrator.model.source import SourceMap
from orchestrator.model.spec import EdgeSpec, LoopPolicy, NodeSpec, OnError, Pool, RetryPolicy
from orchestrator.model.workflow import Workflow

__all__ = [
    "EdgeSpec",
    "LoopPolicy",
    "NodeHandle",
    "NodeSpec",
    "OnError",
    "Pool",
    "RetryPolicy",
    "SourceMap",
    "Workflow",
    "WorkflowBuilder",
]
