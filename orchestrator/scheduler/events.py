"""What the scheduler reacts to. Every event is data; time comes with it as ``now``.

An attempt that ended is a :class:`~orchestrator.results.RunResult`, the one
shape a run's outcome has from the runner to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.results import RunResult
from orchestrator.states import DesiredLoopState


@dataclass(frozen=True)
class Start:
    """The job was submitted: start the main stage."""


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


Event = Start | RunResult | RunStarted | Tick | LoopControl | CancelJob | Resend
