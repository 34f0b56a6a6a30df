"""The input journal: every event a job's scheduler was given, in order, with its time.

A driver journals each job's inputs in the event log (kind ``input``). The
inputs given between two writes of the driver's recorder are gathered into
one entry per job (``"type": "steps"``: each step one input, or the results
decided on as one batch, with its time), written in the same transaction as
what was decided on them, or before it.
Because the scheduler is deterministic, :func:`replay` rebuilds a job's state
from its plan and journal alone; a driver that takes the job over (its last
driver died) replays it, carries out what the replayed decisions still owe,
and sends again the runs that were in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from orchestrator.planner import Plan
from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import Scheduler
from orchestrator.scheduler.commands import Command, JobChanged, LoopChanged, RunChanged
from orchestrator.scheduler.events import (
    CancelJob,
    Event,
    LoopControl,
    Resend,
    Start,
    Tick,
)
from orchestrator.states import DesiredLoopState
from orchestrator.store.base import EventRecord
from orchestrator.store.batching import BatchingRecorder

INPUT_KIND = "input"
FINISHED = "finished"
_ERROR = 1 + RunResult._fields.index("error")


def body(event: Event) -> dict[str, Any] | list[Any] | None:
    """One scheduler input as JSON (``None`` for inputs not worth replaying).

    A run result is an array: ``"finished"`` and its fields in order (the error
    as :meth:`RunError.to_json`, with its traceback): one is journaled for every
    run, and an array is built and encoded without a Python step per field.
    Entries written before hold ``{"type": "finished", ...}``: both are read.
    """
    match event:
        case RunResult(error=None):
            return [FINISHED, *event]
        case RunResult(error=RunError() as error):
            fields: list[Any] = [FINISHED, *event]
            fields[_ERROR] = error.to_json()
            return fields
        case Tick():
            return {"type": "tick"}
        case Start():
            return {"type": "start"}
        case LoopControl(loop=loop, desired=desired):
            return {"type": "control", "loop": loop, "desired": desired.value}
        case CancelJob(reason=reason):
            return {"type": "cancel", "reason": reason}
        case Resend(run_ids=run_ids):
            return {"type": "resend", "runs": list(run_ids)}
    return None


def parse(data: dict[str, Any] | list[Any], where: str = "a journal entry") -> Event:
    """The scheduler input :func:`body` made JSON of.

    Results journaled before they had one shape (the error as ``Type: message``
    text and a separate ``retryable`` flag) are read too.

    Raises:
        ValueError: ``data`` is not a known input.
    """
    if isinstance(data, list):
        if len(data) != len(RunResult._fields) + 1 or data[0] != FINISHED:
            raise ValueError(f"{where} holds no input: an array of {len(data)} items")
        return RunResult.from_json(dict(zip(RunResult._fields, data[1:], strict=True)))
    fields = dict(data)
    kind = fields.pop("type", None)
    match kind:
        case "finished":
            return RunResult.from_json(fields)
        case "tick":
            return Tick()
        case "start":
            return Start()
        case "control":
            return LoopControl(str(fields["loop"]), DesiredLoopState(str(fields["desired"])))
        case "cancel":
            return CancelJob(str(fields.get("reason") or "cancelled by request"))
        case "resend":
            return Resend(tuple(str(r) for r in fields.get("runs") or ()))
    raise ValueError(f"{where} holds no input: {kind!r}")


def entry(job_id: str, event: Event, now: float) -> EventRecord | None:
    """The journal entry of one scheduler input (``None`` for inputs not worth replaying)."""
    item = body(event)
    if item is None:
        return None
    data: dict[str, Any] = {"type": "steps", "steps": [{"at": now, "inputs": [item]}]}
    return EventRecord(job_id=job_id, kind=INPUT_KIND, at=now, data=data)


Step = tuple[float, list[Event]]
"""Inputs the scheduler was given in one call, and when (``now``)."""


def steps_of(record: EventRecord) -> list[Step]:
    """The scheduler inputs a journal entry holds, grouped as they were given, in
    order: an entry of type ``steps`` holds the steps gathered for one write; one
    of type ``inputs`` the results decided on at one instant; any other, one input.

    Raises:
        ValueError: the entry holds something else.
    """
    where = f"journal entry {record.seq} of job {record.job_id}"
    data: dict[str, Any] = dict(record.data)
    match data.get("type"):
        case "steps":
            return [
                (float(step["at"]), [parse(item, where) for item in step["inputs"]])
                for step in data.get("steps") or ()
            ]
        case "inputs":
            return [(record.at, [parse(item, where) for item in data.get("inputs") or ()])]
    return [(record.at, [parse(data, where)])]


def events_of(record: EventRecord) -> list[Event]:
    """The scheduler inputs a journal entry holds, in order (see :func:`steps_of`).

    Raises:
        ValueError: the entry holds something else.
    """
    return [event for _, events in steps_of(record) for event in events]


def event_of(record: EventRecord) -> Event:
    """The one scheduler input a single journal entry holds.

    Raises:
        ValueError: the entry holds no input, or several.
    """
    events = events_of(record)
    if len(events) != 1:
        raise ValueError(f"journal entry {record.seq} of job {record.job_id} holds {len(events)}")
    return events[0]


class Journal:
    """Gathers a job's scheduler inputs for its driver's recorder.

    Each :meth:`record` is one step. The recorder takes what was gathered (one
    entry per job) as it takes each batch (:meth:`BatchingRecorder.gather`),
    ahead of that batch's records: an input is never written after a record
    decided on it.
    """

    def __init__(self, recorder: BatchingRecorder) -> None:
        self._recorder = recorder
        self._lock = threading.Lock()
        # Events are kept as given (immutable) and turned into JSON as the recorder
        # takes them: off the driver's thread, one pass per batch.
        self._steps: dict[str, list[tuple[float, Sequence[Event]]]] = {}
        recorder.gather(self._take)

    def record(self, job_id: str, event: Event, now: float) -> None:
        """Journal one input."""
        self._add(job_id, now, (event,))

    def record_many(self, job_id: str, events: Sequence[Event], now: float) -> None:
        """Journal inputs given at the same instant, in order, as one step (the
        driver passes results it decides on as one batch; the sequence is kept as
        given, so it must not change after)."""
        if events:
            self._add(job_id, now, events)

    def _add(self, job_id: str, now: float, events: Sequence[Event]) -> None:
        with self._lock:
            first = not self._steps
            steps = self._steps.get(job_id)
            if steps is None:
                self._steps[job_id] = [(now, events)]
            else:
                steps.append((now, events))
        # One submission per entry: while steps wait, the recorder has one counted
        # that the batch taking them answers. Not under the lock: the recorder
        # calls _take under its own.
        if first:
            self._recorder.touch()

    def _take(self) -> Callable[[], list[EventRecord]]:
        with self._lock:
            taken, self._steps = self._steps, {}
        return partial(_entries, taken)


def _entries(taken: dict[str, list[tuple[float, Sequence[Event]]]]) -> list[EventRecord]:
    """One journal entry per job of the steps taken from a :class:`Journal`."""
    records = []
    for job_id, given in taken.items():
        steps: list[dict[str, Any]] = []
        last = 0.0
        for at, events in given:
            items = [
                [FINISHED, *e]  # a result without error, the most of them: body()'s first case
                if type(e) is RunResult and e.error is None
                else body(e)
                for e in events
            ]
            if None in items:
                items = [item for item in items if item is not None]
            if items:
                steps.append({"at": at, "inputs": items})
                last = at
        if steps:
            data: dict[str, Any] = {"type": "steps", "steps": steps}
            records.append(EventRecord(job_id=job_id, kind=INPUT_KIND, at=last, data=data))
    return records


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
        commands: list[Command] = []
        for at, events in steps_of(record):
            replayed.inputs += len(events)
            results = [e for e in events if isinstance(e, RunResult)]
            if len(results) > 1 and len(results) == len(events):
                # Results given at one instant were decided on as one batch.
                commands += scheduler.handle_many(results, at)
            else:
                commands += [c for event in events for c in scheduler.handle(event, at)]
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
