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

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self._value_ in _JOB_TERMINAL


class LoopStatus(enum.StrEnum):
    """``pending → running ⇄ paused → completed | stopped | failed | cancelled``."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the loop has ended."""
        return self._value_ in _LOOP_TERMINAL


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

    @property
    def terminal(self) -> bool:
        """Whether the run has ended."""
        return self._value_ in _RUN_TERMINAL

    @property
    def ok(self) -> bool:
        """Whether the run produced outputs (succeeded or cached)."""
        return self._value_ in _RUN_OK


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


# Plain strings: hashing an enum member runs Python code, hashing its value does not.
_JOB_TERMINAL = frozenset({"completed", "failed", "cancelled"})
_LOOP_TERMINAL = frozenset({"completed", "stopped", "failed", "cancelled"})
_RUN_TERMINAL = frozenset({"succeeded", "cached", "failed", "skipped", "cancelled"})
_RUN_OK = frozenset({"succeeded", "cached"})
