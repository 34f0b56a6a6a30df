"""What every part of the engine holds: declared once for the mixins that share it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from nodes.registry import NodeRegistry
from orchestrator.engine.executor import Executor
from orchestrator.engine.jobs import EngineJob
from orchestrator.queues import QueueBackend
from orchestrator.runner import NodeRunner
from orchestrator.store.base import LoopRecord, Store
from orchestrator.store.batching import BatchingRecorder


class EngineParts:
    """The engine's services and state, as the parts of :class:`Engine` see them."""

    store: Store
    runner: NodeRunner
    recorder: BatchingRecorder
    executor: Executor
    queues: QueueBackend
    registry: NodeRegistry
    clock: Callable[[], float]
    _inbox: queue.SimpleQueue[Any]
    _jobs: dict[str, EngineJob]
    _jobs_lock: threading.Lock
    _journal: bool
    _quiet: frozenset[str]
    _loop_changes: dict[tuple[str, str], LoopRecord]
    _loop_flush_at: float

    # provided by CommandApplier, used by Takeover
    _record_input: Callable[[str, Any, float], None]
    _carry_out: Callable[[EngineJob, list[Any], float], None]
