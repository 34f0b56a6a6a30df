"""The store package's chosen public API."""

from __future__ import annotations

import orchestrator.store


def test_the_public_api_is_pinned() -> None:
    assert orchestrator.store.__all__ == [
        "DEFAULT_SQLITE_NAME",
        "MEMORY_URL",
        "BatchingRecorder",
        "EventRecord",
        "JobNotFound",
        "JobRecord",
        "LogRecord",
        "LoopRecord",
        "LoopTally",
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
    ]
    for name in orchestrator.store.__all__:
        assert hasattr(orchestrator.store, name), name


def test_store_errors_say_whether_they_may_be_retried() -> None:
    from nodes.errors import SegueError
    from orchestrator.store import JobNotFound, StoreConflict, StoreError, StoreUnavailable

    assert issubclass(StoreError, SegueError)
    assert StoreUnavailable.retryable
    assert not StoreError.retryable and not StoreConflict.retryable
    assert not JobNotFound("j").retryable and "j" in str(JobNotFound("j"))
