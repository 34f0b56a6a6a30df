"""A job as a driver holds it: its scheduler, its live events, its waiters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from nodes.ids import RunId
from orchestrator.driver.recording import run_event
from orchestrator.planner import Plan
from orchestrator.scheduler import Scheduler
from orchestrator.scheduler.commands import RunChanged
from orchestrator.store.base import EventRecord
from orchestrator.views import JobEvent, JobResult

LiveItem = EventRecord | JobEvent | tuple[float, RunChanged]


class DrivenJob:
    """One job a driver drives."""

    def __init__(self, job_id: str, plan: Plan, scheduler: Scheduler) -> None:
        self.id = job_id
        self.plan = plan
        self.scheduler = scheduler
        self.done = threading.Event()
        self.result: JobResult | None = None
        self._history: list[LiveItem] = []
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self.desired: dict[str, str] = {}  # loop -> what the scheduler last wanted of it
        self.loop_status: dict[str, str] = {}  # loop -> its last recorded status

    # events ---------------------------------------------------------------------------
    def publish(self, events: list[LiveItem]) -> None:
        """Make events visible to live listeners."""
        with self._changed:
            self._history.extend(events)
            self._changed.notify_all()

    def node_event(self, run_id: str, kind: str, data: Any, now: float) -> JobEvent:
        """A node reported progress or a preview; returns the event shown live."""
        parts = RunId.parse(run_id)
        live = JobEvent(
            job=self.id,
            kind=kind,
            at=now,
            loop=parts.loop,
            iteration=parts.iteration,
            node=parts.node,
            run_id=run_id,
            data=data if isinstance(data, dict) else {"value": data},
        )
        self.publish_live(live)
        return live

    def publish_live(self, event: JobEvent) -> None:
        """An event that is shown live but not stored (progress, previews)."""
        with self._changed:
            self._history.append(event)
            self._changed.notify_all()

    def events(self, timeout: float | None = None) -> Iterator[JobEvent]:
        """Every event since the job started, then live ones until the job ends."""
        index = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                while index >= len(self._history):
                    if self.done.is_set():
                        return
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"no event from job {self.id} within {timeout}s")
                    self._changed.wait(left if left is not None else 1.0)
                batch = self._history[index:]
                index = len(self._history)
            for item in batch:
                event = item if isinstance(item, JobEvent) else _to_event(self.id, item)
                yield event
                if event.final:
                    return

    # ending ---------------------------------------------------------------------------
    def complete(self, result: JobResult) -> None:
        """The job ended: wake everyone waiting."""
        self.result = result
        self.done.set()
        with self._changed:
            self._changed.notify_all()

    def fail_driver(self, exc: BaseException) -> None:
        """The driver thread died: waiters must not hang."""
        self._error = exc
        if self.result is None:
            self.result = JobResult(job=self.id, status="failed", error=f"the driver failed: {exc}")
        self.done.set()
        with self._changed:
            self._changed.notify_all()


def _to_event(job_id: str, item: EventRecord | tuple[float, RunChanged]) -> JobEvent:
    if isinstance(item, tuple):
        at, change = item
        item = run_event(job_id, change, at)
    return JobEvent.of(item)
