"""The scheduler: a pure state machine over one job.

``Scheduler.handle(event, now)`` takes an event and the current time and
returns commands; it reads no clock, touches no broker, store or thread.
The embedded engine and the distributed coordinator drive the same class,
and a test can drive it step by step, or replay a job's events and get the
same decisions.
"""

from __future__ import annotations

import heapq
from typing import Any

from nodes.base import Role
from orchestrator.planner.plan import Plan, PlannedNode
from orchestrator.results import RunResult
from orchestrator.scheduler.backoff import attempts_left, retry_delay
from orchestrator.scheduler.commands import Command, Dispatch, Revoke
from orchestrator.scheduler.events import (
    CancelJob,
    Event,
    LoopControl,
    Resend,
    RunStarted,
    Start,
    Tick,
)
from orchestrator.scheduler.loops import LoopMachine
from orchestrator.scheduler.state import JobState, LoopState, RunState
from orchestrator.states import LoopStatus, RunStatus


class Scheduler(LoopMachine):
    """Decides what one job does next.

    Args:
        job_id: The job's id (the first part of every run id).
        plan: The compiled workflow.
        inputs: The job's inputs, read by ``Input`` nodes.
    """

    def __init__(self, job_id: str, plan: Plan, inputs: dict[str, Any] | None = None) -> None:
        self.state = JobState(job_id, plan, dict(inputs or {}))
        self.out: list[Command] = []
        self.now = 0.0

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply ``event`` at time ``now``; return what to do, in order."""
        self.now = now
        out: list[Command] = []
        self.out = out
        state = self.state
        if isinstance(event, RunResult):
            if not state.status.terminal:
                self._run_finished(event)
        elif isinstance(event, Tick):
            self._tick()
        elif isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, Start):
            if state.status.value == "pending":
                self.start_job()
        elif isinstance(event, LoopControl):
            self.control(state.loop(event.loop), event.desired)
        elif isinstance(event, CancelJob):
            self._cancel(event.reason)
        elif isinstance(event, Resend):
            self._resend(event.run_ids)
        self.out = []
        return out

    def handle_many(self, events: list[RunResult], now: float) -> list[Command]:
        """Apply a batch of finished runs at once (the executor's fast path)."""
        self.now = now
        out: list[Command] = []
        self.out = out
        if not self.state.status.terminal:
            for event in events:
                self._run_finished(event)
        self.out = []
        return out

    def overdue(self, now: float, age: float) -> list[str]:
        """Run ids dispatched more than ``age`` seconds before ``now`` and not heard of since."""
        return [
            run.run_id
            for run in self.state.active.values()
            if run.attempt
            and run.status.value in ("queued", "running")
            and run.node.role is not Role.GROUP
            and now - run.dispatched_at > age
        ]

    def in_flight(self) -> list[Dispatch]:
        """The current attempt of every dispatched run not yet finished, as dispatches
        marked ``resent`` (what a :class:`Resend` of every run would send)."""
        return self._in_flight(None)

    def awaited(self) -> list[tuple[str, PlannedNode, float]]:
        """``(run id, node, dispatched at)`` of every dispatched run not yet finished
        (what :meth:`in_flight` would send again, without building the dispatches)."""
        return [
            (run.run_id, run.node, run.dispatched_at)
            for run in self.state.active.values()
            if run.attempt
            and run.status.value not in ("retrying", "succeeded", "failed")
            and run.node.role is not Role.GROUP
        ]

    def _resend(self, run_ids: tuple[str, ...]) -> None:
        wanted = set(run_ids) if run_ids else None
        dispatches = self._in_flight(wanted)
        active = self.state.active
        for dispatch in dispatches:
            active[dispatch.run_id].dispatched_at = self.now
        self.out.extend(dispatches)

    def _in_flight(self, wanted: set[str] | None) -> list[Dispatch]:
        # Same run id, same attempt: a worker that already finished one skips it
        # and reports its result.
        out: list[Dispatch] = []
        for run in list(self.state.active.values()):
            if wanted is not None and run.run_id not in wanted:
                continue
            if run.attempt == 0 or run.status.value in ("retrying", "succeeded", "failed"):
                continue
            if run.node.role is Role.GROUP:
                continue  # a group's items are runs of their own
            producing = run.node.kind == "producer" and run.stage.parent is None
            loop = run.stage.loop
            out.append(
                Dispatch(
                    run.run_id,
                    run.node,
                    loop.name,
                    run.stage.index,
                    run.attempt,
                    self.inputs_of(run),
                    "produce" if producing else "run",
                    loop.cursor if producing else None,
                    self.writers_done(loop) if producing else False,
                    run.deadline,
                    self.state.job_id,
                    resent=True,
                    path=run.path,
                )
            )
        return out

    def next_deadline(self) -> float | None:
        """When the driver should send the next :class:`Tick`, if ever."""
        return self.state.next_deadline()

    # events -------------------------------------------------------------------------
    def _run_started(self, event: RunStarted) -> None:
        run = self.state.active.get(event.run_id)
        if run is not None and run.attempt == event.attempt and run.status is RunStatus.QUEUED:
            run.status = RunStatus.RUNNING
            run.worker = event.worker

    def _run_finished(self, event: RunResult) -> None:
        run = self.state.active.get(event.run_id)
        if (
            run is None
            or run.attempt != event.attempt
            or run.status.terminal
            or run.status is RunStatus.RETRYING  # this attempt already ended (failed, timed out)
        ):
            return  # a late or duplicate result: the first one counted
        run.started_at = event.started_at
        run.finished_at = event.finished_at
        run.worker = event.worker
        if event.status == "failed":
            error = event.error
            if error is None:
                self._attempt_failed(run, "error", True)
            else:
                self._attempt_failed(run, str(error), error.retryable, error.traceback)
            return
        if run.node.kind == "producer" and run.stage.parent is None:
            if event.exhausted:
                self.exhausted(run)
            elif event.idle:
                self.idle(run)
            else:
                self.produced(run, event.cursor, event.delivery, event.outputs or {})
            return
        status = RunStatus.CACHED if event.status == "cached" else RunStatus.SUCCEEDED
        self.finish(run, status, event.outputs or {})

    def _attempt_failed(
        self, run: RunState, error: str, retryable: bool, traceback: str | None = None
    ) -> None:
        retry = run.node.retry
        if retryable and attempts_left(retry, run.attempt) and not self.state.cancelled:
            run.status = RunStatus.RETRYING
            run.error = error
            run.traceback = traceback
            self.record(run)
            heapq.heappush(
                self.state.timers,
                (self.now + retry_delay(retry, run.attempt), -1, run.run_id, run.attempt),
            )
            return
        if run.node.kind == "producer" and run.stage.parent is None:
            loop = run.stage.loop
            loop.producing = False
            loop.current = None
            run.stage.failed = True
            self.finish(run, RunStatus.FAILED, error=error, traceback=traceback)
            self.end_loop(loop, LoopStatus.FAILED)
            return
        self.finish(run, RunStatus.FAILED, error=error, traceback=traceback)

    def _tick(self) -> None:
        timers = self.state.timers
        active = self.state.active
        while timers and timers[0][0] <= self.now:
            _, _, run_id, attempt = heapq.heappop(timers)
            run = active.get(run_id)
            if run is None or run.attempt != attempt or run.status.terminal:
                continue
            if run.status is RunStatus.RETRYING:
                kind = (
                    "produce" if run.node.kind == "producer" and run.stage.parent is None else "run"
                )
                self.dispatch(run, kind, run.stage.loop.cursor if kind == "produce" else None)
            elif run.deadline is not None and run.deadline <= self.now:
                self.out.append(Revoke(run.run_id, run.attempt))
                limit = run.node.timeout_s
                self._attempt_failed(run, f"TimeoutError: node ran longer than {limit:g}s", True)

    def _cancel(self, reason: str) -> None:
        state = self.state
        if state.status.terminal:
            return
        state.cancelled = True
        state.error = state.error or reason
        for run in list(state.active.values()):
            if run.attempt and run.status is not RunStatus.RETRYING:
                self.out.append(Revoke(run.run_id, run.attempt))
        for loop in state.all_loops():
            self._cancel_loop(loop)
        state.active.clear()
        state.timers.clear()
        self.maybe_finish_job()

    def _cancel_loop(self, loop: LoopState) -> None:
        for stage in loop.open.values():
            for run in stage.runs.values():
                if not run.status.terminal and run.attempt:
                    run.status = RunStatus.CANCELLED
                    self.record(run)
        loop.open.clear()
        loop.backlog.clear()
        loop.current = None
        loop.producing = False
        if not loop.status.terminal:
            loop.ending = None
            self.set_status(loop, LoopStatus.CANCELLED)
