"""What clients and every surface show of a job: its result, loops, runs and live events.

A neutral module below both the clients and the drivers, so neither reaches
into the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.store.base import EventRecord, LogRecord, LoopRecord, RunRecord


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class LoopInfo(_Frozen):
    """One loop of a job (the main stage is ``main``)."""

    name: str
    status: str
    iterations: int = 0
    failed_iterations: int = 0

    def to_json(self) -> dict[str, Any]:
        """``{"name", "status", "iterations", "failed_iterations"}``."""
        return self.model_dump()

    @classmethod
    def of(cls, record: LoopRecord) -> LoopInfo:
        """The loop as a store row recorded it."""
        return cls(
            name=record.name,
            status=record.status,
            iterations=record.iterations,
            failed_iterations=record.failed_iterations,
        )


class RunInfo(_Frozen):
    """One node run as recorded: ``{job}:{loop}:{iteration}:{node}``.

    ``error`` (``Type: message``) and ``traceback`` are those of the latest
    failed attempt of a ``retrying`` or ``failed`` run (no traceback for a
    failure that raised nothing, such as a timeout).
    """

    run_id: str
    loop: str
    iteration: int
    node: str
    type: str
    status: str
    attempt: int = 1
    queue: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None

    @classmethod
    def of(cls, record: RunRecord) -> RunInfo:
        """The run as a store row recorded it."""
        outputs = record.outputs
        return cls(
            run_id=record.run_id,
            loop=record.loop,
            iteration=record.iteration,
            node=record.node_id,
            type=record.type_name,
            status=record.status,
            attempt=record.attempt,
            queue=record.queue,
            worker=record.worker,
            started_at=record.started_at,
            finished_at=record.finished_at,
            outputs=outputs,
            error=record.error,
            traceback=record.traceback,
        )


class JobResult(_Frozen):
    """How a job ended: ``segue run --json`` prints exactly this object."""

    job: str
    status: str
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    loops: dict[str, LoopInfo] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the job completed."""
        return self.status == "completed"

    def to_json(self) -> dict[str, Any]:
        """The DESIGN section 6 object."""
        return {
            "job": self.job,
            "status": self.status,
            "outputs": self.outputs,
            "error": self.error,
            "loops": {
                name: {
                    "status": info.status,
                    "iterations": info.iterations,
                    "failed_iterations": info.failed_iterations,
                }
                for name, info in self.loops.items()
            },
        }


class JobEvent(_Frozen):
    """One live update of a job: a run, loop or job state change, progress or a preview.

    Attributes:
        seq: Position in the job's event log (0 for events not stored).
        kind: ``job``, ``loop``, ``run``, ``progress`` or ``preview``.
        data: What the event says besides its state; a ``run`` event holds the
            ``type`` and ``attempt``, a ``retrying`` or ``failed`` one its
            ``error`` and ``traceback`` (see :attr:`error`, :attr:`traceback`).
    """

    job: str
    kind: str
    at: float
    seq: int = 0
    loop: str | None = None
    iteration: int | None = None
    node: str | None = None
    run_id: str | None = None
    status: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def error(self) -> str | None:
        """The error (``Type: message``) of a ``retrying`` or ``failed`` run, or a failed job."""
        error = self.data.get("error")
        return error if isinstance(error, str) else None

    @property
    def traceback(self) -> str | None:
        """The traceback a ``retrying`` or ``failed`` run event holds, if the run raised."""
        traceback = self.data.get("traceback")
        return traceback if isinstance(traceback, str) else None

    @property
    def final(self) -> bool:
        """Whether this event ends the job's stream."""
        return self.kind == "job" and self.status in ("completed", "failed", "cancelled")

    @classmethod
    def of(cls, record: EventRecord) -> JobEvent:
        """The event a stored event record shows."""
        return cls(
            job=record.job_id,
            kind=record.kind,
            at=record.at,
            seq=record.seq,
            loop=record.loop,
            iteration=record.iteration,
            node=record.node,
            run_id=record.run_id,
            status=record.status,
            data=record.data,
        )


@dataclass(frozen=True)
class LogQuery:
    """Which of a job's run logs to read (DESIGN 3.16): what ``Client.logs`` asks
    every backend for.

    Attributes:
        job: The job's id.
        loop: Only this loop's runs (``main`` for the main stage).
        node: Only this node's runs.
        level: Only records at this level or above (``DEBUG`` ... ``CRITICAL``, any case).
        after: Only log records with a larger ``id`` (tracebacks always come): the
            largest ``id`` seen, to follow a job.
    """

    job: str
    loop: str | None = None
    node: str | None = None
    level: str | None = None
    after: int = 0


class LogLine(_Frozen):
    """One log record of a run attempt (DESIGN 3.16), or a failed run's traceback
    (``logger`` ``traceback``, ``id`` 0).

    ``level`` is a ``logging`` level name; ``logger`` the logger's name, or
    ``stdout``/``stderr`` for a printed line.
    """

    id: int
    at: float
    run_id: str
    loop: str
    iteration: int
    node: str
    attempt: int
    level: str
    logger: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """Every field, as JSON."""
        return self.model_dump()

    @classmethod
    def of(cls, record: LogRecord) -> LogLine:
        """The line a stored record makes."""
        return cls(
            id=record.id,
            at=record.at,
            run_id=record.run_id,
            loop=record.loop,
            iteration=record.iteration,
            node=record.node_id,
            attempt=record.attempt,
            level=level_name(record.level),
            logger=record.logger,
            message=record.message,
        )


def level_name(level: int) -> str:
    """The name of a ``logging`` level number (``Level 7`` for one without)."""
    return logging.getLevelName(level)
