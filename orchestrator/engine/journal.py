"""The input journal: every event a job's scheduler was given, in order, with its time.

A coordinator journals each job's inputs in the event log (kind ``input``);
because the scheduler is deterministic, a coordinator that takes the job over
after a crash replays the journal into a fresh scheduler and gets the same
state back, then reconciles the runs that were in flight.
"""

from __future__ import annotations

from typing import Any

from orchestrator.runtime.states import DesiredLoopState
from orchestrator.scheduler.events import CancelJob, Event, LoopControl, RunFinished, Start, Tick
from orchestrator.store.base import EventRecord

INPUT_KIND = "input"


def entry(job_id: str, event: Event, now: float) -> EventRecord | None:
    """The journal entry of one scheduler input (``None`` for inputs not worth replaying)."""
    body: dict[str, Any]
    if isinstance(event, RunFinished):
        body = {"type": "finished", **event._asdict()}
    elif isinstance(event, Tick):
        body = {"type": "tick"}
    elif isinstance(event, Start):
        body = {"type": "start"}
    elif isinstance(event, LoopControl):
        body = {"type": "control", "loop": event.loop, "desired": event.desired.value}
    elif isinstance(event, CancelJob):
        body = {"type": "cancel", "reason": event.reason}
    else:
        return None
    return EventRecord(job_id=job_id, kind=INPUT_KIND, at=now, data=body)


def event_of(record: EventRecord) -> Event:
    """The scheduler input a journal entry holds.

    Raises:
        ValueError: the entry is not a known input.
    """
    body: dict[str, Any] = dict(record.data)
    kind = body.pop("type", None)
    if kind == "finished":
        return RunFinished(**body)
    if kind == "tick":
        return Tick()
    if kind == "start":
        return Start()
    if kind == "control":
        return LoopControl(str(body["loop"]), DesiredLoopState(str(body["desired"])))
    if kind == "cancel":
        return CancelJob(str(body.get("reason") or "cancelled by request"))
    raise ValueError(f"journal entry {record.seq} of job {record.job_id} holds no input: {kind!r}")
