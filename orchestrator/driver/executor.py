"""Where a driver's dispatched runs execute: the executor protocol.

The embedded engine's :class:`~orchestrator.engine.executor.LocalExecutor`
(local pools), the coordinator's
:class:`~orchestrator.celery.executor.CeleryExecutor` (Celery workers) and
:class:`workers.inprocess.InProcessExecutor` (the worker task, called in
this process) implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch

ResultSink = Callable[[list[RunResult]], None]


class Executor(Protocol):
    """Where dispatched runs execute; results come back through the sink it was given."""

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        """Start the runs; return the results of any it ran right away."""
        ...

    def close(self, wait: bool = True) -> None:
        """Stop taking runs."""
        ...


ExecutorFactory = Callable[[NodeRunner, ResultSink], Executor]
