"""A job as the embedded engine holds it: its scheduler, its events, its waiters."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from orchestrator.client.types import JobEvent, JobResult
from orchestrator.engine.recording import run_event
from orchestrator.errors import Issue, WorkflowInvalid
from orchestrator.planner import Plan
from orchestrator.runtime.states import JobStatus, LoopStatus
from orchestrator.scheduler import Scheduler
from orchestrator.scheduler.commands import RunChanged
from orchestrator.store.base import EventRecord, JobRecord, LoopRecord, Store

T = TypeVar("T")
LiveItem = EventRecord | JobEvent | tuple[float, RunChanged]


def check_inputs(plan: Plan, inputs: dict[str, Any]) -> dict[str, Any]:
    """The job's inputs, checked against the workflow's ``Input`` nodes.

    Raises:
        WorkflowInvalid: naming each missing or unknown input.
    """
    issues = []
    for name in inputs:
        if name not in plan.inputs:
            known = ", ".join(sorted(plan.inputs)) or "none"
            issues.append(Issue(f"unknown input {name!r}; the workflow's inputs are: {known}"))
    for name, spec in plan.inputs.items():
        if name not in inputs and not spec.has_default:
            issues.append(
                Issue(
                    f"missing input {name!r} (it has no default); pass it with -i {name}=VALUE",
                    node=spec.nodes[0],
                )
            )
    if issues:
        raise WorkflowInvalid(issues, name=plan.workflow)
    return inputs


def record_submission(
    store: Store, plan: Plan, workflow: str, digest: str, inputs: dict[str, Any], now: float
) -> str:
    """Write a new pending job and its pending loops to the store; returns the job id."""
    job_id = uuid.uuid4().hex[:16]
    store.create_job(
        JobRecord(
            id=job_id,
            workflow=workflow,
            status=JobStatus.PENDING.value,
            digest=digest,
            inputs=inputs,
            created_at=now,
        )
    )
    store.save_loops(
        [
            LoopRecord(
                job_id=job_id,
                name=loop.name,
                status=LoopStatus.PENDING.value,
                policy=loop.policy.model_dump(mode="json"),
                updated_at=now,
            )
            for loop in plan.all_loops()
        ]
    )
    return job_id


class EngineJob:
    """One job in the embedded engine."""

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

    def node_event(self, event: tuple[str, str, str, Any], now: float) -> JobEvent:
        """A node reported progress or a preview; returns the event shown live."""
        _, run_id, kind, data = event
        parts = run_id.split(":", 3)
        live = JobEvent(
            job=self.id,
            kind=kind,
            at=now,
            loop=parts[1],
            iteration=int(parts[2]),
            node=parts[3],
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

    def fail_engine(self, exc: BaseException) -> None:
        """The engine thread died: waiters must not hang."""
        self._error = exc
        if self.result is None:
            self.result = JobResult(job=self.id, status="failed", error=f"engine failed: {exc}")
        self.done.set()
        with self._changed:
            self._changed.notify_all()

    def call(self, fn: Callable[[], T], inbox: queue.SimpleQueue[Any]) -> T:
        """Run ``fn`` on the engine thread (which owns the scheduler) and return its value."""
        box: queue.SimpleQueue[Any] = queue.SimpleQueue()
        inbox.put((self.id, lambda: box.put(fn())))
        result: T = box.get(timeout=30)
        return result


def _to_event(job_id: str, item: EventRecord | tuple[float, RunChanged]) -> JobEvent:
    if isinstance(item, tuple):
        at, change = item
        item = run_event(job_id, change, at)
    record = item
    return JobEvent(
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
