"""What the scheduler reacts to. Every event is data; time comes with it as ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from orchestrator.messages import RunResult
from orchestrator.states import DesiredLoopState


@dataclass(frozen=True)
class Start:
    """The job was submitted: start the main stage."""


class RunFinished(NamedTuple):
    """An attempt of a node run ended (a named tuple: there is one per run).

    Attributes:
        status: ``succeeded``, ``cached`` or ``failed``.
        error: ``"Type: message"`` of a failure.
        retryable: Whether a failed attempt may be retried.
        exhausted: A producer had no more items.
        idle: A queue reader found no message yet.
        delivery: The queue message to acknowledge after the iteration.
    """

    run_id: str
    attempt: int
    status: str
    outputs: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    cursor: Any = None
    exhausted: bool = False
    idle: bool = False
    delivery: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None

    @classmethod
    def from_result(cls, result: RunResult) -> RunFinished:
        """The event for a :class:`RunResult` that came back over the broker."""
        error = result.error
        return cls(
            run_id=result.run_id,
            attempt=result.attempt,
            status=result.status,
            outputs=dict(result.outputs),
            error=str(error) if error else None,
            retryable=error.retryable if error else True,
            cursor=result.cursor,
            exhausted=result.exhausted,
            idle=result.idle,
            delivery=result.delivery,
            started_at=result.started_at,
            finished_at=result.finished_at,
            worker=result.worker,
        )


@dataclass(frozen=True)
class RunStarted:
    """A worker began an attempt."""

    run_id: str
    attempt: int
    worker: str | None = None


@dataclass(frozen=True)
class Tick:
    """Time passed: retry waits and timeouts may be due."""


@dataclass(frozen=True)
class LoopControl:
    """An operator asked a loop to pause, resume (``running``) or stop."""

    loop: str
    desired: DesiredLoopState


@dataclass(frozen=True)
class Resend:
    """Send again the current attempt of runs that may be lost.

    The driver asks for it when it cannot know whether a dispatched run will
    ever report: after taking a job over, when a run never reported, when the
    worker that held it died. The runs go out marked ``resent`` (a worker
    claims them before running them), and count as dispatched now. An empty
    ``run_ids`` means every run in flight.
    """

    run_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CancelJob:
    """An operator cancelled the job."""

    reason: str = "cancelled by request"


Event = Start | RunFinished | RunStarted | Tick | LoopControl | CancelJob | Resend
