"""How a driver carries out a scheduler's commands: record, acknowledge, finish.

Dispatches are handed back to the driver, which gives them to its executor:
the only difference between the embedded engine and the coordinator.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from nodes.artifacts import ArtifactStore
from nodes.errors import SegueError
from orchestrator.driver.jobs import DrivenJob, LiveItem
from orchestrator.driver.recording import (
    job_event,
    loop_event,
    loop_record,
    run_event,
    run_record,
)
from orchestrator.queues import QueueBackend, queue_key
from orchestrator.runner import restore_value
from orchestrator.scheduler import (
    Ack,
    Command,
    Dispatch,
    JobChanged,
    LoopChanged,
    RunChanged,
)
from orchestrator.store.base import EventRecord, LoopRecord, RunRecord, Store
from orchestrator.store.batching import BatchingRecorder
from orchestrator.streams.channels import StreamHub
from orchestrator.views import JobResult, LoopInfo

log = logging.getLogger("segue.driver")
LOOP_FLUSH_S = 0.1  # loop rows are written at most this often (state changes at once)


class Applier:
    """Records what a job's scheduler decided, and finishes the job when it ends.

    Args:
        store: Where loops and finished jobs are written at once.
        recorder: Where runs and events are written in batches.
        queues: The queue backend whose messages are acknowledged.
        artifacts: Where offloaded job outputs are read back from.
        quiet: Run statuses stored as rows only, not as events.
        streams: The stream channels dropped when a job ends.
    """

    def __init__(
        self,
        store: Store,
        recorder: BatchingRecorder,
        queues: QueueBackend,
        artifacts: ArtifactStore,
        quiet: frozenset[str],
        streams: StreamHub | None = None,
    ) -> None:
        self.store = store
        self.streams = streams
        self.recorder = recorder
        self.queues = queues
        self.artifacts = artifacts
        self._quiet = quiet
        self._loop_changes: dict[tuple[str, str], LoopRecord] = {}
        self._loop_flush_at = 0.0

    @property
    def loop_flush_at(self) -> float | None:
        """When buffered loop rows are due to be written (``None``: none buffered)."""
        return self._loop_flush_at if self._loop_changes else None

    def apply(self, job: DrivenJob, commands: list[Command], now: float) -> list[Dispatch]:
        """Carry out ``commands`` but the dispatches, which are returned in order."""
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
            self.flush_loops(now, force=True)
        if runs or stored:
            self.recorder.submit(runs, stored)
        if events:
            job.publish(events)
        if finished is not None:
            self.finish(job, finished, now)
        return dispatches

    def rewrite(self, job: DrivenJob, commands: list[Command], now: float) -> None:
        """Write the rows of run and loop changes again, without their events (a job
        taken over: the changes were decided before, perhaps never written)."""
        runs = [run_record(job.id, c, now) for c in commands if isinstance(c, RunChanged)]
        loops = [
            loop_record(job.id, c, job.plan.loop(c.loop).policy.model_dump(mode="json"), now)
            for c in commands
            if isinstance(c, LoopChanged)
        ]
        if runs:
            self.recorder.submit_runs(runs)
        if loops:
            self.store.save_loops(loops)

    def _ack(self, job: DrivenJob, command: Ack) -> None:
        settings = job.plan.nodes[command.node].settings
        name = queue_key(job.id, getattr(settings, "queue", ""), getattr(settings, "scope", "job"))
        group = getattr(settings, "group", None) or command.loop
        # Acknowledged once the journal holds what consumed the message (the reader's
        # result, the iteration's end): acknowledged before, a driver that dies with
        # those inputs unwritten loses the message, as its successor replays a journal
        # that never received it from a broker that has forgotten it. The callback
        # runs on the recorder's thread (the queue backends are thread-safe) and never
        # if that write fails: the message then stays unacknowledged, never lost.
        self.recorder.when_written(partial(self.queues.ack, name, group, command.delivery))

    def finish(self, job: DrivenJob, change: JobChanged, now: float) -> None:
        self.flush_loops(now, force=True)
        self.recorder.flush()
        outputs = self._output_values(change.outputs)
        self.store.update_job(
            job.id, status=change.status, at=now, outputs=outputs, error=change.error
        )
        self._delete_job_queues(job)
        if self.streams is not None:
            self.streams.end_job(job.id)
        job.complete(
            JobResult(
                job=job.id,
                status=change.status,
                outputs=outputs,
                error=change.error,
                loops=self._loop_infos(job.id),
            )
        )

    def _delete_job_queues(self, job: DrivenJob) -> None:
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

    def stored_result(self, job_id: str) -> JobResult | None:
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
        artifacts = self.artifacts
        try:
            return {name: restore_value(value, artifacts) for name, value in outputs.items()}
        except (SegueError, ValueError):
            return outputs  # an unreadable artifact: keep its reference rather than fail

    def flush_loops(self, now: float, force: bool = False) -> None:
        if not self._loop_changes or (not force and now < self._loop_flush_at):
            return
        records = list(self._loop_changes.values())
        self._loop_changes.clear()
        self.store.save_loops(records)
        self._loop_flush_at = now + LOOP_FLUSH_S
