"""The pure scheduler: (plan, state, event, now) -> commands."""

from orchestrator.scheduler.backoff import attempts_left, retry_delay
from orchestrator.scheduler.commands import (
    Ack,
    Command,
    Dispatch,
    JobChanged,
    LoopChanged,
    Revoke,
    RunChanged,
)
from orchestrator.scheduler.events import (
    CancelJob,
    Event,
    LoopControl,
    Resend,
    RunStarted,
    Start,
    Tick,
)
from orchestrator.scheduler.scheduler import Scheduler

__all__ = [
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
]
