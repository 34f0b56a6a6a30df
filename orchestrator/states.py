"""The states of jobs, loops and node runs (DESIGN section 3), and node health."""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    """``pending → running → completed | failed | cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    terminal: bool
    """Whether the job has ended."""

    def __init__(self, value: str) -> None:
        # plain attributes, not properties: asked for every run
        self.terminal = value in ("completed", "failed", "cancelled")


class LoopStatus(enum.StrEnum):
    """``pending → running ⇄ paused → completed | stopped | failed | cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    terminal: bool
    """Whether the loop has ended."""

    def __init__(self, value: str) -> None:
        self.terminal = value in ("completed", "stopped", "failed", "cancelled")


class RunStatus(enum.StrEnum):
    """``queued → running → succeeded | failed | skipped | cancelled``, plus
    ``retrying`` between attempts and ``cached`` for a cache hit."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    terminal: bool
    """Whether the run has ended."""
    ok: bool
    """Whether the run produced outputs (succeeded or cached)."""

    def __init__(self, value: str) -> None:
        self.terminal = value in ("succeeded", "cached", "failed", "skipped", "cancelled")
        self.ok = value in ("succeeded", "cached")


class DesiredLoopState(enum.StrEnum):
    """What an operator asked of a loop."""

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Health(enum.StrEnum):
    """A node's health within a job."""

    HEALTHY = "healthy"
    RETRYING = "retrying"
    FAILING = "failing"
