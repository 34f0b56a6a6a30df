"""Taking jobs over: adopting jobs found in the store, and chasing lost runs.

A job whose driver died is rebuilt by replaying its journal (the scheduler is
deterministic, so the state comes back as it was); what the replayed
decisions still owe the store is written, the runs still in flight but for
those whose results were reported and never journaled are sent again — as a
:class:`~orchestrator.scheduler.Resend`, journaled like any input — and then
those results are applied.
The queue messages the dead driver held are settled against the journal
first (:mod:`orchestrator.driver.orphans`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from orchestrator.driver.applier import Applier
from orchestrator.driver.inputs import Adopt, Input, Schedule
from orchestrator.driver.jobs import DrivenJob
from orchestrator.driver.journal import Journal, Replayed, replay
from orchestrator.driver.orphans import Orphans
from orchestrator.driver.plans import PlanCache
from orchestrator.planner import Plan
from orchestrator.queues import QueueBackend
from orchestrator.results import RunResult
from orchestrator.scheduler import Command, Dispatch, Resend, Start
from orchestrator.states import JobStatus
from orchestrator.store.base import EventRecord, JobRecord, Store
from orchestrator.store.batching import BatchingRecorder


class Driving(Protocol):
    """What a takeover needs of the driver it serves (:class:`~orchestrator.driver.Driver`)."""

    store: Store
    queues: QueueBackend
    alone: Callable[[], bool]
    recorder: BatchingRecorder
    journal: Journal
    applier: Applier
    plans: PlanCache
    clock: Callable[[], float]

    @property
    def jobs(self) -> Mapping[str, DrivenJob]: ...
    def hold(self, job_id: str, plan: Plan, inputs: dict[str, Any]) -> DrivenJob: ...
    def put(self, item: Input) -> None: ...
    def post(self, job_id: str, event: Any) -> None: ...
    def carry_out(self, job: DrivenJob, commands: list[Command], now: float) -> None: ...


log = logging.getLogger("segue.driver")
JOURNAL_PAGE = 5000


class Takeover:
    """Adopts jobs into a driver and reconciles the runs it lost track of."""

    def __init__(self, driver: Driving) -> None:
        self.driver = driver

    def adopt(
        self,
        record: JobRecord,
        backlog: list[RunResult],
        on_journaled: Callable[[], None] | None,
    ) -> bool:
        """Hold the job and queue its start or its rebuilding on the driver's thread.

        Raises:
            WorkflowError: the job's workflow is not stored, or not valid here
                (a node type it names is not registered in this process).
        """
        driver = self.driver
        plan = driver.plans.of_job(record, driver.clock())
        driver.hold(record.id, plan, dict(record.inputs))
        if record.status == JobStatus.PENDING.value:
            driver.put(Schedule(record.id, Start()))
        else:
            driver.put(Adopt(record, backlog, on_journaled))
        return True

    def resume(self, adopt: Adopt, now: float) -> None:
        """Rebuild the job from its journal (on the driver's thread), write what the
        decisions still owe, apply the backlog, then send again what is in flight."""
        driver = self.driver
        job_id = adopt.record.id
        job = driver.jobs.get(job_id)
        if job is None:
            return
        # Before the job's readers receive again: what its dead driver held of its
        # queues is settled against the journal (see orchestrator.driver.orphans).
        orphans = Orphans(job_id, job.plan, driver.queues, driver.alone)
        journal = self._journal(job_id)
        replayed = replay(
            job_id,
            job.plan,
            dict(adopt.record.inputs),
            orphans.noting(journal) if orphans else journal,
        )
        if orphans:
            acknowledged, given = orphans.reclaim()
            log.info(
                "job %s: of the queue messages its last driver held, %d consumed "
                "(acknowledged), %d given back",
                job_id,
                acknowledged,
                given,
            )
        job.scheduler = replayed.scheduler
        for loop in job.scheduler.state.all_loops():
            job.desired[loop.name] = loop.desired.value
            job.loop_status[loop.name] = loop.status.value
        if replayed.inputs == 0:  # the job never started before its driver died
            driver.post(job_id, Start())
            return
        self._settle(job, replayed, now)
        if job.done.is_set():
            log.info("took job %s over: %d inputs replayed; it had ended", job_id, replayed.inputs)
            return
        # What the dead driver had sent and is not in the backlog is sent again
        # first (answered from the store if recorded finished): it was sent before
        # anything the backlog's results lead to, and goes out before it again.
        reported = {(r.run_id, r.attempt) for r in adopt.backlog}
        in_flight = {
            d.run_id for d in job.scheduler.in_flight() if (d.run_id, d.attempt) not in reported
        }
        answered, resent = self.chase(job, in_flight, now)
        if adopt.backlog:
            # Results a worker reported but the dead driver never journaled (or
            # journaled and did not get to release): applied, not sent again (left
            # out above), so a run that finished does not run twice.
            driver.journal.record_many(job_id, adopt.backlog, now)
            commands = job.scheduler.handle_many(adopt.backlog, now)
            driver.carry_out(job, _unsent(commands, adopt.backlog), now)
        if adopt.on_journaled is not None:
            driver.recorder.when_written(adopt.on_journaled)
        log.info(
            "took job %s over: %d inputs replayed, %d results applied from the broker, "
            "%d runs in flight answered from the store, %d sent again",
            job_id,
            replayed.inputs,
            len(adopt.backlog),
            answered,
            resent,
        )

    def _settle(self, job: DrivenJob, replayed: Replayed, now: float) -> None:
        """Write the replayed decisions' rows again and finish the job if it ended: its
        driver may have died between journaling an input and recording what followed."""
        applier = self.driver.applier
        applier.rewrite(job, [*replayed.runs.values(), *replayed.loops.values()], now)
        change = replayed.job
        if change is None or not JobStatus(change.status).terminal:
            return
        stored = applier.stored_result(job.id)
        if stored is not None:
            job.complete(stored)  # its end was recorded before the driver died
        else:
            applier.apply(job, [change], now)  # journaled, never recorded: finish it now

    def _journal(self, job_id: str) -> Iterator[EventRecord]:
        after = 0
        while True:
            batch = self.driver.store.read_events(job_id, after=after, limit=JOURNAL_PAGE)
            if not batch:
                return
            yield from batch
            after = batch[-1].seq

    def reconcile(self, older_than_s: float, now: float) -> None:
        """Chase runs dispatched long ago that never reported (a task can die with a
        broker error after being acknowledged)."""
        for job in list(self.driver.jobs.values()):
            if job.done.is_set():
                continue
            stale = set(job.scheduler.overdue(now, older_than_s))
            if not stale:
                continue
            answered, resent = self.chase(job, stale, now)
            log.warning(
                "job %s: %d run(s) dispatched over %.0f s ago never reported: "
                "%d answered from the store, %d sent again",
                job.id,
                len(stale),
                older_than_s,
                answered,
                resent,
            )

    def chase_lost(self, job_id: str, run_ids: frozenset[str], reason: str, now: float) -> None:
        """Runs of a job that no live worker will report (:mod:`orchestrator.liveness`)."""
        job = self.driver.jobs.get(job_id)
        if job is None or job.done.is_set():
            return
        answered, resent = self.chase(job, set(run_ids), now)
        if answered or resent:
            log.warning(
                "job %s: %d run(s) lost (%s): %d answered from the store, %d sent again",
                job_id,
                answered + resent,
                reason,
                answered,
                resent,
            )

    def chase(self, job: DrivenJob, run_ids: set[str], now: float) -> tuple[int, int]:
        """Runs in flight that may be lost: one the store shows finished gets its
        recorded result; any other is sent again, same attempt, to be claimed.
        Returns how many were answered and how many sent again."""
        driver = self.driver
        results: list[RunResult] = []
        resend: list[str] = []
        for dispatch in job.scheduler.in_flight():
            if dispatch.run_id not in run_ids:
                continue
            finished = self._recorded(dispatch)
            if finished is not None:
                results.append(finished)
            else:
                resend.append(dispatch.run_id)
        commands: list[Command] = []
        if results:
            driver.journal.record_many(job.id, results, now)
            commands += job.scheduler.handle_many(results, now)
        if resend:
            event = Resend(tuple(resend))
            driver.journal.record(job.id, event, now)
            commands += job.scheduler.handle(event, now)
        driver.carry_out(job, commands, now)
        return len(results), len(resend)

    def _recorded(self, dispatch: Dispatch) -> RunResult | None:
        """The result the store holds for this attempt, if it finished."""
        record = self.driver.store.get_run(dispatch.run_id)
        if (
            record is None
            or record.attempt != dispatch.attempt
            or record.status not in ("succeeded", "cached", "failed")
            or dispatch.kind != "run"
        ):
            return None
        return RunResult.from_record(record)


def _unsent(commands: list[Command], backlog: list[RunResult]) -> list[Command]:
    """The commands of applying ``backlog``, less the dispatches of runs it holds the
    results of (the dead driver sent those, and they finished). Other dispatches
    may have been sent by it too: they go as resent, to be claimed."""
    reported = {(r.run_id, r.attempt) for r in backlog}
    out: list[Command] = []
    for command in commands:
        if isinstance(command, Dispatch):
            if (command.run_id, command.attempt) in reported:
                continue
            command = command._replace(resent=True)
        out.append(command)
    return out
