"""How the engine carries out a scheduler's commands: dispatch, record, acknowledge, finish.

Shared by the embedded engine and the coordinator; the executor it dispatches
to is the only difference between them.
"""

from __future__ import annotations

import logging
from typing import Any

from nodes.errors import SegueError
from orchestrator.client.types import JobResult, LoopInfo
from orchestrator.engine.jobs import EngineJob, LiveItem
from orchestrator.engine.journal import entry as journal_entry
from orchestrator.engine.parts import EngineParts
from orchestrator.engine.recording import job_event, loop_event, loop_record, run_event, run_record
from orchestrator.queues import queue_key
from orchestrator.runner import restore_value
from orchestrator.scheduler import (
    Ack,
    Command,
    Dispatch,
    JobChanged,
    LoopChanged,
    RunChanged,
)
from orchestrator.store.base import EventRecord, RunRecord

log = logging.getLogger("segue.engine")
LOOP_FLUSH_S = 0.1  # loop rows are written at most this often (state changes at once)
INLINE_ROUNDS = 256  # cheap runs decided in a row before other work gets a turn


class CommandApplier(EngineParts):
    """The part of :class:`~orchestrator.engine.engine.Engine` that acts on decisions."""

    def _carry_out(self, job: EngineJob, commands: list[Command], now: float) -> None:
        rounds = 0
        while commands:
            dispatches = self._apply(job, commands, now)
            commands = []
            if dispatches:
                inline = self.executor.submit(dispatches)
                rounds += 1
                if inline and rounds < INLINE_ROUNDS:
                    # Cheap runs done on this thread: decide on them at once.
                    for result in inline:
                        self._record_input(job.id, result, now)
                    commands = job.scheduler.handle_many(inline, now)
                elif inline:
                    self._inbox.put(inline)  # let requests and other jobs in first

    def _apply(self, job: EngineJob, commands: list[Command], now: float) -> list[Dispatch]:
        dispatches: list[Dispatch] = []
        runs: list[RunRecord] = []
        events: list[LiveItem] = []
        stored: list[EventRecord] = []
        finished: JobChanged | None = None
        moved = False
        job_id = job.id
        for command in commands:
            if isinstance(command, Dispatch):
                dispatches.append(command)
            elif isinstance(command, RunChanged):
                runs.append(run_record(job_id, command, now))
                if command.status in self._quiet:
                    events.append((now, command))  # made into an event only if someone looks
                else:
                    event = run_event(job_id, command, now)
                    events.append(event)
                    stored.append(event)
            elif isinstance(command, LoopChanged):
                if command.desired != job.desired.get(command.loop, "running"):
                    # A policy (on_error: pause) changed what the loop wants: record
                    # it, so a client's later resume is a change the coordinator sees.
                    job.desired[command.loop] = command.desired
                    self.store.request_loop(job_id, command.loop, command.desired)
                policy = job.plan.loop(command.loop).policy.model_dump(mode="json")
                self._loop_changes[(job_id, command.loop)] = loop_record(
                    job_id, command, policy, now
                )
                if job.loop_status.get(command.loop) != command.status:
                    job.loop_status[command.loop] = command.status
                    moved = True
                event = loop_event(job_id, command, now)
                events.append(event)
                stored.append(event)
            elif isinstance(command, Ack):
                self._ack(job, command)
            elif isinstance(command, JobChanged):
                event = job_event(job_id, command, now)
                events.append(event)
                stored.append(event)
                if command.status in ("completed", "failed", "cancelled"):
                    finished = command
                else:
                    self.store.update_job(job_id, status=command.status, at=now)
        if moved:
            # A loop changed state: its row is written before the event saying so,
            # so a reader who sees the event also sees the loop in that state.
            self._flush_loops(now, force=True)
        if runs:
            self.recorder.submit_runs(runs)
        if stored:
            self.recorder.submit_events(stored)
        if events:
            job.publish(events)
        if finished is not None:
            self._finish(job, finished, now)
        return dispatches

    def _ack(self, job: EngineJob, command: Ack) -> None:
        settings = job.plan.nodes[command.node].settings
        name = queue_key(job.id, getattr(settings, "queue", ""), getattr(settings, "scope", "job"))
        group = getattr(settings, "group", None) or command.loop
        self.queues.ack(name, group, command.delivery)

    def _finish(self, job: EngineJob, change: JobChanged, now: float) -> None:
        self._flush_loops(now, force=True)
        self.recorder.flush()
        outputs = self._output_values(change.outputs)
        self.store.update_job(
            job.id, status=change.status, at=now, outputs=outputs, error=change.error
        )
        self._delete_job_queues(job)
        job.complete(
            JobResult(
                job=job.id,
                status=change.status,
                outputs=outputs,
                error=change.error,
                loops=self._loop_infos(job.id),
            )
        )

    def _delete_job_queues(self, job: EngineJob) -> None:
        """A job's own queues (and its groups' sub-workflows') end with it; global ones stay."""
        names: set[str] = set()
        plans = [job.plan]
        while plans:
            plan = plans.pop()
            names.update(q.name for q in plan.queues.values() if q.scope == "job")
            plans.extend(plan.subplans.values())
        for name in sorted(names):
            try:
                self.queues.delete(queue_key(job.id, name, "job"))
            except Exception as exc:  # the job ended all the same; the queue is left behind
                log.warning("could not delete queue %s of job %s: %s", name, job.id, exc)

    def _loop_infos(self, job_id: str) -> dict[str, LoopInfo]:
        return {r.name: LoopInfo.of(r) for r in self.store.list_loops(job_id)}

    def _stored_result(self, job_id: str) -> JobResult | None:
        """How a job this engine does not hold ended, per the store; None if it did not."""
        record = self.store.get_job(job_id)
        if record is None or record.status not in ("completed", "failed", "cancelled"):
            return None
        return JobResult(
            job=job_id,
            status=record.status,
            outputs=dict(record.outputs),
            error=record.error,
            loops=self._loop_infos(job_id),
        )

    def _output_values(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """Job outputs with the artifacts large values were offloaded to read back:
        a job's outputs are its values, whatever their size."""
        artifacts = self.runner.artifacts
        try:
            return {name: restore_value(value, artifacts) for name, value in outputs.items()}
        except (SegueError, ValueError):
            return outputs  # an unreadable artifact: keep its reference rather than fail

    def _flush_loops(self, now: float, force: bool = False) -> None:
        if not self._loop_changes or (not force and now < self._loop_flush_at):
            return
        records = list(self._loop_changes.values())
        self._loop_changes.clear()
        self.store.save_loops(records)
        self._loop_flush_at = now + LOOP_FLUSH_S

    def _record_input(self, job_id: str, event: Any, now: float) -> None:
        if self._journal:
            record = journal_entry(job_id, event, now)
            if record is not None:
                self.recorder.submit_events([record])
