"""Segue's orchestrator: workflow model, validation, planning and the surfaces.

It re-exports the node SDK's public names, so user code needs one import::

    from orchestrator import Node, NodeConfig, Ports, RunContext, Workflow
"""

from nodes import (
    EXHAUSTED,
    Artifact,
    ArtifactStore,
    Exhausted,
    FatalNodeError,
    LocalArtifactStore,
    MemoryArtifactStore,
    Mime,
    Node,
    NodeConfig,
    NodeError,
    NodeKind,
    NodeRegistry,
    Ports,
    Produced,
    Producer,
    Resources,
    RunContext,
    SegueError,
    Sink,
    UnknownNodeTypeError,
    builtin_registry,
    default_registry,
)
from orchestrator.client import AsyncClient, Client, Job, JobEvent, JobResult, LoopInfo
from orchestrator.errors import (
    Issue,
    UnknownJobError,
    UnknownLoopError,
    WorkflowError,
    WorkflowInvalid,
    WorkflowParseError,
)
from orchestrator.model import (
    EdgeSpec,
    LoopPolicy,
    NodeSpec,
    RetryPolicy,
    Workflow,
    WorkflowBuilder,
)
from orchestrator.planner import Plan, compile_workflow
from orchestrator.validation import Limits, validate

__all__ = [
    "EXHAUSTED",
    "Artifact",
    "ArtifactStore",
    "AsyncClient",
    "Client",
    "EdgeSpec",
    "Exhausted",
    "FatalNodeError",
    "Issue",
    "Job",
    "JobEvent",
    "JobResult",
    "Limits",
    "LocalArtifactStore",
    "LoopInfo",
    "LoopPolicy",
    "MemoryArtifactStore",
    "Mime",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeKind",
    "NodeRegistry",
    "NodeSpec",
    "Plan",
    "Ports",
    "Produced",
    "Producer",
    "Resources",
    "RetryPolicy",
    "RunContext",
    "SegueError",
    "Sink",
    "UnknownJobError",
    "UnknownLoopError",
    "UnknownNodeTypeError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowError",
    "WorkflowInvalid",
    "WorkflowParseError",
    "builtin_registry",
    "compile_workflow",
    "default_registry",
    "validate",
]
