"""The input journal: every event a job's scheduler was given, in order, with its time.

A driver journals each job's inputs in the event log (kind ``input``).
Because the scheduler is deterministic, :func:`replay` rebuilds a job's state
from its plan and journal alone; a driver that takes the job over (its last
driver died) replays it, carries out what the replayed decisions still owe,
and sends again the runs that were in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.planner import Plan
from orchestrator.runtime.states import DesiredLoopState
from orchestrator.scheduler import Scheduler
from orchestrator.scheduler.commands import Command, JobChanged, LoopChanged, RunChanged
from orchestrator.scheduler.events import (
    CancelJob,
    Event,
    LoopControl,
    Resend,
    RunFinished,
    Start,
    Tick,
)
from orchestrator.store.base import EventRecord

INPUT_KIND = "input"


def entry(job_id: str, event: Event, now: float) -> EventRecord | None:
    """The journal entry of one scheduler input (``None`` for inputs not worth replaying)."""
    body: dict[str, Any]
    match event:
        case RunFinished():
            body = {"type": "finished", **event._asdict()}
        case Tick():
            body = {"type": "tick"}
        case Start():
            body = {"type": "start"}
        case LoopControl(loop=loop, desired=desired):
            body = {"type": "control", "loop": loop, "desired": desired.value}
        case CancelJob(reason=reason):
            body = {"type": "cancel", "reason": reason}
        case Resend(run_ids=run_ids):
            body = {"type": "resend", "runs": list(run_ids)}
        case _:
            return None
    return EventRecord(job_id=job_id, kind=INPUT_KIND, at=now, data=body)


def event_of(record: EventRecord) -> Event:
    """The scheduler input a journal entry holds.

    Raises:
        ValueError: the entry is not a known input.
    """
    body: dict[str, Any] = dict(record.data)
    kind = body.pop("type", None)
    match kind:
        case "finished":
            return RunFinished(**body)
        case "tick":
            return Tick()
        case "start":
            return Start()
        case "control":
            return LoopControl(str(body["loop"]), DesiredLoopState(str(body["desired"])))
        case "cancel":
            return CancelJob(str(body.get("reason") or "cancelled by request"))
        case "resend":
            return Resend(tuple(str(r) for r in body.get("runs") or ()))
    raise ValueError(f"journal entry {record.seq} of job {record.job_id} holds no input: {kind!r}")


class Journal:
    """Writes a job's scheduler inputs to the event log, through ``append``."""

    def __init__(self, append: Callable[[list[EventRecord]], None]) -> None:
        self._append = append

    def record(self, job_id: str, event: Event, now: float) -> None:
        """Journal one input."""
        record = entry(job_id, event, now)
        if record is not None:
            self._append([record])

    def record_many(self, job_id: str, events: Iterable[Event], now: float) -> None:
        """Journal inputs given at the same instant, in order."""
        records = [r for e in events if (r := entry(job_id, e, now)) is not None]
        if records:
            self._append(records)


@dataclass
class Replayed:
    """A job's scheduler rebuilt from its journal, and what its decisions recorded.

    Attributes:
        inputs: How many journal entries were replayed.
        runs: The last recorded change of each run, by run id.
        loops: The last recorded change of each loop, by name.
        job: The last change of the job, if any.
        decisions: Every command the replay produced, in order.
    """

    scheduler: Scheduler
    inputs: int = 0
    runs: dict[str, RunChanged] = field(default_factory=dict)
    loops: dict[str, LoopChanged] = field(default_factory=dict)
    job: JobChanged | None = None
    decisions: list[Command] = field(default_factory=list)


def replay(
    job_id: str,
    plan: Plan,
    inputs: dict[str, Any],
    journal: Iterable[EventRecord],
    keep_decisions: bool = False,
) -> Replayed:
    """Rebuild a job's scheduler from its plan, inputs and journal (``plan + journal → state``).

    Entries of other kinds than ``input`` are skipped, so the whole event log
    may be passed.
    """
    scheduler = Scheduler(job_id, plan, inputs)
    replayed = Replayed(scheduler)
    for record in journal:
        if record.kind != INPUT_KIND:
            continue
        commands = scheduler.handle(event_of(record), record.at)
        replayed.inputs += 1
        if keep_decisions:
            replayed.decisions.extend(commands)
        for command in commands:
            match command:
                case RunChanged():
                    replayed.runs[command.run_id] = command
                case LoopChanged():
                    replayed.loops[command.loop] = command
                case JobChanged():
                    replayed.job = command
    return replayed
