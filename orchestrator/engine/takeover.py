"""Jobs written to the store by clients, and jobs taken over from a dead coordinator.

A coordinator adopts submitted jobs, replays the journal of a job it takes over
(the scheduler is deterministic, so the state comes back as it was), sends the
runs that were in flight again, and chases runs that never reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.engine.jobs import EngineJob
from orchestrator.engine.journal import INPUT_KIND, event_of
from orchestrator.engine.parts import EngineParts
from orchestrator.errors import WorkflowParseError
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan
from orchestrator.queues import queue_key
from orchestrator.runtime.states import JobStatus
from orchestrator.scheduler import (
    Command,
    Dispatch,
    RunFinished,
    Scheduler,
    Start,
)
from orchestrator.store.base import JobRecord

log = logging.getLogger("segue.engine")


class Takeover(EngineParts):
    """The part of :class:`~orchestrator.engine.engine.Engine` that serves a coordinator."""

    def _plan(self, workflow: Workflow, now: float) -> tuple[Plan, str]:
        raise NotImplementedError

    def adopt(
        self,
        record: JobRecord,
        backlog: list[RunFinished] | None = None,
        on_journaled: Callable[[], None] | None = None,
    ) -> bool:
        """Drive a job a client wrote to the store (distributed mode); False if known.

        A job that was already running under another coordinator is rebuilt by
        replaying its journal; then the results reported and not yet journaled
        (``backlog``, read from the broker) are applied, ``on_journaled`` being
        called once they are in the store, and only the runs still in flight
        after that are dispatched again.

        Raises:
            WorkflowError: the job's stored workflow is missing or no longer valid.
        """
        with self._jobs_lock:
            if record.id in self._jobs:
                return False
        workflow = self._stored_workflow(record)
        plan, _ = self._plan(workflow, self.clock())
        for q in plan.queues.values():
            for reader in q.readers:
                self.queues.subscribe(
                    queue_key(record.id, q.name, q.scope), reader.group or reader.loop
                )
        job = EngineJob(record.id, plan, Scheduler(record.id, plan, dict(record.inputs)))
        with self._jobs_lock:
            self._jobs[record.id] = job
        if record.status == JobStatus.PENDING.value:
            self._inbox.put((record.id, Start()))
        else:
            self._inbox.put((record.id, lambda: self._resume(job, backlog or [], on_journaled)))
        return True

    def drop(self, job_id: str) -> None:
        """Stop driving a job (another coordinator holds it now); nothing is cancelled."""
        with self._jobs_lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            job.fail_engine(RuntimeError("another coordinator took this job over"))

    def driving(self) -> list[str]:
        """Ids of the jobs this engine drives and that have not ended."""
        with self._jobs_lock:
            return [j.id for j in self._jobs.values() if not j.done.is_set()]

    def _resume(
        self,
        job: EngineJob,
        backlog: list[RunFinished],
        on_journaled: Callable[[], None] | None,
    ) -> None:
        """Replay a job's journal (on the engine thread), apply the results reported
        since, then resend the runs still in flight."""
        after = 0
        replayed = 0
        while True:
            batch = self.store.read_events(job.id, after=after, limit=5000)
            if not batch:
                break
            for record in batch:
                after = record.seq
                if record.kind == INPUT_KIND:
                    job.scheduler.handle(event_of(record), record.at)
                    replayed += 1
        state = job.scheduler.state
        for loop in state.all_loops():
            job.desired[loop.name] = loop.desired.value
            job.loop_status[loop.name] = loop.status.value
        if replayed == 0:  # the job never started before its coordinator died
            self._inbox.put((job.id, Start()))
            return
        in_flight = job.scheduler.in_flight()
        if backlog:
            # Results a worker reported but the dead coordinator never journaled
            # (or journaled and did not get to release): applied before anything
            # is sent again, so a run that finished does not run twice.
            now = self.clock()
            for result in backlog:
                self._record_input(job.id, result, now)
            self._carry_out(job, _unsent(job.scheduler.handle_many(backlog, now), backlog), now)
            sent = {(d.run_id, d.attempt) for d in in_flight}
            in_flight = [d for d in job.scheduler.in_flight() if (d.run_id, d.attempt) in sent]
        if on_journaled is not None:
            self.recorder.when_written(on_journaled)
        log.info(
            "took job %s over: %d inputs replayed, %d results applied from the broker, "
            "%d runs in flight sent again",
            job.id,
            replayed,
            len(backlog),
            len(in_flight),
        )
        if in_flight:
            self.executor.submit(in_flight)

    def desired(self, job_id: str, loop: str) -> str | None:
        """What the job's scheduler currently wants of a loop (``None``: unknown)."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        return None if job is None else job.desired.get(loop, "running")

    def reconcile(self, older_than_s: float) -> None:
        """Chase runs dispatched long ago that never reported (a task can die with a
        broker error after being acknowledged): a run the store shows finished gets its
        recorded result; any other is sent again, same attempt, for a worker to claim."""
        self._inbox.put((None, lambda: self._reconcile_all(older_than_s)))

    def _reconcile_all(self, older_than_s: float) -> None:
        now = self.clock()
        for job in list(self._jobs.values()):
            if job.done.is_set():
                continue
            stale = set(job.scheduler.overdue(now, older_than_s))
            if not stale:
                continue
            results, resend = [], []
            for dispatch in job.scheduler.in_flight():
                if dispatch.run_id not in stale:
                    continue
                record = self.store.get_run(dispatch.run_id)
                if (
                    record is not None
                    and record.attempt == dispatch.attempt
                    and record.status in ("succeeded", "cached", "failed")
                    and dispatch.kind == "run"
                ):
                    results.append(
                        RunFinished(
                            record.run_id,
                            record.attempt,
                            "failed" if record.status == "failed" else record.status,
                            record.outputs or {},
                            record.error,
                            retryable=False,
                            started_at=record.started_at,
                            finished_at=record.finished_at,
                            worker=record.worker,
                        )
                    )
                else:
                    resend.append(dispatch)
            log.warning(
                "job %s: %d run(s) dispatched over %.0f s ago never reported: "
                "%d answered from the store, %d sent again",
                job.id,
                len(stale),
                older_than_s,
                len(results),
                len(resend),
            )
            if results:
                self._inbox.put(results)
            if resend:
                for run_id in (d.run_id for d in resend):
                    job.scheduler.state.active[run_id].dispatched_at = now
                self.executor.submit(resend)

    def _stored_workflow(self, record: JobRecord) -> Workflow:
        spec = record.spec
        if record.digest is not None:
            stored = self.store.get_workflow(record.digest)
            if stored is None:
                raise WorkflowParseError(f"job {record.id}: workflow {record.digest} is not stored")
            spec = stored.spec
        return Workflow.from_dict(spec)


def _unsent(commands: list[Command], backlog: list[RunFinished]) -> list[Command]:
    """The commands of applying ``backlog``, less the dispatches of runs it holds the
    results of (the dead coordinator sent those, and they finished). Other
    dispatches may have been sent by it too: they go as resent, to be claimed."""
    reported = {(r.run_id, r.attempt) for r in backlog}
    out: list[Command] = []
    for command in commands:
        if isinstance(command, Dispatch):
            if (command.run_id, command.attempt) in reported:
                continue
            command = command._replace(resent=True)
        out.append(command)
    return out
