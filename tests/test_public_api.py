"""Each package's public API is chosen: ``__all__`` is pinned here.

A name added to or removed from a package's ``__all__`` is a change of the
public API and must be made here too, on purpose. Every exported name imports
from its package, and every exported class or function says what it is.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

PUBLIC_API: dict[str, list[str]] = {
    "nodes": [
        "Artifact",
        "ArtifactError",
        "ArtifactStore",
        "DuplicateNodeTypeError",
        "ENTRY_POINT_GROUP",
        "EXHAUSTED",
        "Exhausted",
        "FatalNodeError",
        "LocalArtifactStore",
        "MemoryArtifactStore",
        "Mime",
        "Node",
        "NodeConfig",
        "NodeDefinitionError",
        "NodeError",
        "NodeKind",
        "NodeRegistry",
        "PortSpec",
        "Ports",
        "Produced",
        "Producer",
        "RegistryError",
        "Resources",
        "Role",
        "RunContext",
        "RunId",
        "SegueError",
        "Sink",
        "Stream",
        "UnknownNodeTypeError",
        "builtin_registry",
        "default_registry",
        "describe",
        "input_ports",
        "output_ports",
        "run_id",
    ],
    "orchestrator": [
        "Artifact",
        "ArtifactError",
        "ArtifactStore",
        "AsyncClient",
        "Client",
        "DriverFailed",
        "DuplicateNodeTypeError",
        "EXHAUSTED",
        "EdgeSpec",
        "Exhausted",
        "FatalNodeError",
        "Issue",
        "Job",
        "JobEvent",
        "JobNotFound",
        "JobResult",
        "JobWaitTimeout",
        "Limits",
        "LocalArtifactStore",
        "LoopEndedError",
        "LoopInfo",
        "LoopPolicy",
        "MemoryArtifactStore",
        "Mime",
        "Node",
        "NodeConfig",
        "NodeDefinitionError",
        "NodeError",
        "NodeKind",
        "NodeRegistry",
        "NodeSpec",
        "NotInJobError",
        "Plan",
        "Ports",
        "Produced",
        "Producer",
        "RegistryError",
        "Resources",
        "RetryPolicy",
        "Role",
        "RunContext",
        "SegueError",
        "Sink",
        "StoreConflict",
        "StoreError",
        "StoreUnavailable",
        "Stream",
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
    ],
    "orchestrator.client": [
        "AsyncClient",
        "AsyncJob",
        "Backend",
        "Client",
        "Job",
        "JobEvent",
        "JobResult",
        "LogLine",
        "LogQuery",
        "LoopInfo",
        "RunInfo",
    ],
    "orchestrator.engine": [
        "Engine",
        "LocalExecutor",
    ],
    "orchestrator.driver": [
        "Driver",
        "INPUT_KIND",
        "Journal",
        "Replayed",
        "Steward",
        "driven",
        "embedded_owner",
        "gone_locally",
        "orphaned",
        "owner_name",
        "replay",
    ],
    "orchestrator.scheduler": [
        "Ack",
        "CancelJob",
        "Command",
        "Dispatch",
        "Event",
        "JobChanged",
        "LoopChanged",
        "LoopControl",
        "Resend",
        "Revoke",
        "RunChanged",
        "RunStarted",
        "Scheduler",
        "Start",
        "Tick",
        "attempts_left",
        "retry_delay",
    ],
    "orchestrator.planner": [
        "InputBinding",
        "InputPlan",
        "LoopPlan",
        "MAIN",
        "OutputPlan",
        "Plan",
        "PlannedNode",
        "QueueEndpoint",
        "QueuePlan",
        "Route",
        "build_plan",
        "compile_workflow",
    ],
    "orchestrator.model": [
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
    ],
    "orchestrator.validation": [
        "Limits",
        "MAIN",
        "ResolvedNode",
        "ValidatedWorkflow",
        "assignable",
        "check",
        "mimes_compatible",
        "validate",
    ],
    "orchestrator.store": [
        "BatchingRecorder",
        "DEFAULT_SQLITE_NAME",
        "EventRecord",
        "JobNotFound",
        "JobRecord",
        "LogRecord",
        "LoopRecord",
        "LoopTally",
        "MEMORY_URL",
        "MemoryStore",
        "ProcessRecord",
        "RecorderClosed",
        "RunRecord",
        "RunTally",
        "SqlStore",
        "Store",
        "StoreConflict",
        "StoreError",
        "StoreUnavailable",
        "Tallies",
        "WorkflowRecord",
        "open_store",
    ],
    "orchestrator.metrics": [
        "DURATION_BUCKETS",
        "MetricsServer",
        "SegueCollector",
        "Snapshot",
        "coordinator_registry",
        "prometheus_registry",
        "segue_collector",
        "serve_metrics",
    ],
    "orchestrator.celery": [
        "CeleryExecutor",
        "DEAD_LETTER_QUEUE",
        "make_celery",
        "task_name",
    ],
    "orchestrator.channels": [
        "Body",
        "CONTROL_QUEUE",
        "Channels",
        "ControlHandler",
        "Delivery",
        "MemoryBroker",
        "MemoryTransport",
        "RESULTS_QUEUE",
        "ResultsHandler",
        "Transport",
        "open_transport",
    ],
    "orchestrator.queues": [
        "KombuQueueBackend",
        "MemoryQueueBackend",
        "Message",
        "QueueBackend",
        "queue_key",
    ],
    "orchestrator.runner": [
        "ARTIFACT_KEY",
        "Cache",
        "DEFAULT_THRESHOLD",
        "NodeRunner",
        "RunSpec",
        "cache_key",
        "offload",
        "restore",
        "restore_value",
    ],
}


def _is_documentable(obj: Any) -> bool:
    # Type aliases (``Command``, ``Pool``) are neither classes nor functions;
    # ``functools.cache`` wrappers are functions that keep ``__wrapped__``.
    return inspect.isclass(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__")


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_the_package_exports_exactly_the_pinned_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC_API[package]


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_all_lists_no_name_twice(package: str) -> None:
    names = importlib.import_module(package).__all__
    assert len(names) == len(set(names))


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_every_exported_name_imports_from_its_package(package: str) -> None:
    # ``from package import *`` reads each name of ``__all__`` off the module.
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_every_exported_class_and_function_has_a_docstring(package: str) -> None:
    module = importlib.import_module(package)
    undocumented = []
    for name in PUBLIC_API[package]:
        obj = getattr(module, name)
        if not _is_documentable(obj):
            continue
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        if not (doc and doc.strip()):
            undocumented.append(name)
    assert undocumented == []


def test_every_package_has_a_docstring() -> None:
    undocumented = [p for p in PUBLIC_API if not (importlib.import_module(p).__doc__ or "").strip()]
    assert undocumented == []
