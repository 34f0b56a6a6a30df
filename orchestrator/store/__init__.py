"""The state store: jobs, loops, node runs, events and cache entries (DESIGN section 5).

:func:`open_store` picks the implementation from a URL: a SQLite file under
``$SEGUE_HOME`` by default, PostgreSQL (``postgresql://...``) in production,
or ``memory://`` for a store that lives only as long as the process.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.store.base import (
    EventRecord,
    JobRecord,
    LogRecord,
    LoopRecord,
    LoopTally,
    ProcessRecord,
    RunRecord,
    RunTally,
    Store,
    Tallies,
    WorkflowRecord,
)
from orchestrator.store.batching import BatchingRecorder
from orchestrator.store.errors import (
    JobNotFound,
    RecorderClosed,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)
from orchestrator.store.memory import MemoryStore
from orchestrator.store.sql import SqlStore
from orchestrator.store.sql.connection import sqlite_url

DEFAULT_SQLITE_NAME = "segue.db"
"""The SQLite file's name under the Segue home folder."""

MEMORY_URL = "memory://"
"""The URL of a :class:`MemoryStore`."""


def open_store(url: str | None, home: Path) -> Store:
    """Open the state store at ``url``, migrated to the latest schema.

    Args:
        url: ``None`` (or empty) for the SQLite file ``home/segue.db`` (the folder is
            created), a SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``),
            or ``memory://``.
        home: The Segue home folder (``$SEGUE_HOME``).

    Raises:
        StoreError: The URL is not supported or the schema could not be migrated.
        StoreUnavailable: The database could not be reached.
    """
    if not url:
        home.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(home / DEFAULT_SQLITE_NAME)
    if url == MEMORY_URL:
        return MemoryStore()
    return SqlStore.open(url)


__all__ = [
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
