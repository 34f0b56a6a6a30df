"""The driver's thread: take a batch of inputs from the inbox, let each job's
scheduler decide on them (results after the same batch's other inputs, reads of
what is in flight after the results), and carry the commands out.

:class:`Serving` is the part of :class:`~orchestrator.driver.driver.Driver` that
runs on its thread; nothing else touches the schedulers.
"""

from __future__ import annotations

import logging
import queue
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

from nodes.ids import RunId
from orchestrator.driver.inputs import (
    Adopt,
    Chase,
    Flush,
    Input,
    Inspect,
    NodeReport,
    Reconcile,
    Release,
    Results,
    Schedule,
    Stop,
)
from orchestrator.results import RunResult
from orchestrator.scheduler import Command, Dispatch, Tick
from orchestrator.store.base import EventRecord

if TYPE_CHECKING:
    from orchestrator.driver.applier import Applier
    from orchestrator.driver.executor import Executor
    from orchestrator.driver.jobs import DrivenJob
    from orchestrator.driver.journal import Journal
    from orchestrator.driver.takeover import Takeover
    from orchestrator.store.batching import BatchingRecorder

log = logging.getLogger("segue.driver")
# Previews, stream chunks (reported in batches of 5 ms), stream restarts and GPU run
# facts (device, peak memory) go to the event log, which cluster clients read;
# progress is shown live only (a node may report it often).
STORED_NODE_EVENTS = frozenset({"preview", "chunk", "restart", "gpu"})
INLINE_ROUNDS = 256  # cheap runs decided in a row before other work gets a turn
BATCH = 512  # inputs taken from the inbox per step


class _Driver(Protocol):
    """What :class:`Serving` uses of the driver it is part of."""

    clock: Callable[[], float]
    journal: Journal
    journal_first: bool
    recorder: BatchingRecorder
    applier: Applier
    executor: Executor
    takeover: Takeover
    _inbox: queue.SimpleQueue[Input]
    _jobs: dict[str, DrivenJob]
    _failure: BaseException | None

    def _step(self) -> bool: ...
    def _look(self, request: Reconcile | Chase | Inspect, now: float) -> None: ...
    def _dispatch(self, job: DrivenJob, dispatches: list[Dispatch], now: float) -> None: ...
    def _node_report(self, report: NodeReport, now: float) -> None: ...
    def _next_timeout(self) -> float | None: ...
    def carry_out(
        self, job: DrivenJob, commands: list[Command], now: float, hold: bool = False
    ) -> None: ...
    @staticmethod
    def _still_owed(job: DrivenJob, dispatches: tuple[Dispatch, ...]) -> list[Dispatch]: ...


class Serving:
    """The loop on the driver's thread."""

    _failure: BaseException | None = None  # what ended the loop, if it failed

    def _serve(self: _Driver) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:
            log.exception("the driver failed")
            self._failure = exc
            for job in list(self._jobs.values()):
                job.fail_driver(exc)

    def _step(self: _Driver) -> bool:
        try:
            first = self._inbox.get(timeout=self._next_timeout())
            batch = [first]
        except queue.Empty:
            batch = []
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        now = self.clock()
        jobs = self._jobs
        results: dict[str, list[RunResult]] = defaultdict(list)
        out: dict[str, list[Command]] = defaultdict(list)
        journaled: list[Callable[[], None]] = []
        held: set[str] = set()  # jobs whose dispatches wait for the journal
        later: list[Reconcile | Chase | Inspect] = []
        for item in batch:
            match item:
                case Release(job_id=job_id, dispatches=dispatches):
                    job = jobs.get(job_id)
                    if job is not None and not job.done.is_set():
                        self._dispatch(job, self._still_owed(job, dispatches), now)
                case Results(results=finished, on_journaled=callback):
                    for result in finished:
                        results[RunId.job_of(result.run_id)].append(result)
                    if callback is not None and all(
                        RunId.job_of(r.run_id) in jobs for r in finished
                    ):
                        journaled.append(callback)  # a dropped job's results are not ours
                case Schedule(job_id=job_id, event=event):
                    job = jobs.get(job_id)
                    if job is not None:
                        self.journal.record(job_id, event, now)
                        out[job_id].extend(job.scheduler.handle(event, now))
                case NodeReport():
                    self._node_report(item, now)
                case Adopt():
                    self.takeover.resume(item, now)
                case Reconcile() | Chase() | Inspect():
                    later.append(item)  # once this batch's results are decided on
                case Flush(done=done):
                    self.applier.flush_loops(now, force=True)
                    done.set()
                case Stop():
                    return False
        for job_id, finished in results.items():
            job = jobs.get(job_id)
            if job is not None:
                self.journal.record_many(job_id, finished, now)
                out[job_id].extend(job.scheduler.handle_many(finished, now))
                if self.journal_first and any(r.delivery is not None for r in finished):
                    held.add(job_id)
        for job in list(jobs.values()):
            deadline = job.scheduler.next_deadline()
            if deadline is not None and deadline <= now and not job.done.is_set():
                self.journal.record(job.id, Tick(), now)
                out[job.id].extend(job.scheduler.handle(Tick(), now))
        for job_id, commands in out.items():
            self.carry_out(jobs[job_id], commands, now, hold=job_id in held)
        for request in later:
            self._look(request, now)
        self.applier.flush_loops(now)
        for callback in journaled:
            self.recorder.when_written(callback)
        return True

    def _look(self: _Driver, request: Reconcile | Chase | Inspect, now: float) -> None:
        """Requests that read which runs are in flight: answered after the results that
        came with them (a result read from the broker with a chase of its run must
        not see the run sent again)."""
        match request:
            case Reconcile(older_than_s=age):
                self.takeover.reconcile(age, now)
            case Chase(job_id=job_id, run_ids=run_ids, reason=reason):
                self.takeover.chase_lost(job_id, run_ids, reason, now)
            case Inspect(read=read, reply=reply):
                reply.put(
                    {j.id: read(j.scheduler) for j in self._jobs.values() if not j.done.is_set()}
                )

    def carry_out(
        self: _Driver, job: DrivenJob, commands: list[Command], now: float, hold: bool = False
    ) -> None:
        """Record the commands and dispatch their runs (once the journal is written,
        if ``hold``: see ``journal_first``)."""
        dispatches = self.applier.apply(job, commands, now) if commands else []
        if dispatches and hold:
            release = Release(job.id, tuple(dispatches))
            self.recorder.when_written(partial(self._inbox.put, release), even_if_failed=True)
            self.recorder.expedite()
        else:
            self._dispatch(job, dispatches, now)

    def _dispatch(self: _Driver, job: DrivenJob, dispatches: list[Dispatch], now: float) -> None:
        """Hand runs to the executor; decide at once on runs it ran inline (cheap
        ones), up to ``INLINE_ROUNDS`` in a row."""
        rounds = 0
        while dispatches:
            inline = self.executor.submit(dispatches)
            rounds += 1
            dispatches = []
            if inline and rounds < INLINE_ROUNDS:
                self.journal.record_many(job.id, inline, now)
                commands = job.scheduler.handle_many(inline, now)
                dispatches = self.applier.apply(job, commands, now)
            elif inline:
                self._inbox.put(Results(inline))  # let requests and other jobs in first

    @staticmethod
    def _still_owed(job: DrivenJob, dispatches: tuple[Dispatch, ...]) -> list[Dispatch]:
        """The held dispatches whose runs still wait for them (not cancelled meanwhile)."""
        active = job.scheduler.state.active
        return [
            d
            for d in dispatches
            if (run := active.get(d.run_id)) is not None
            and run.attempt == d.attempt
            and not run.status.terminal
        ]

    def _node_report(self: _Driver, report: NodeReport, now: float) -> None:
        job = self._jobs.get(RunId.job_of(report.run_id))
        if job is None:
            return
        live = job.node_event(report.run_id, report.kind, report.data, now)
        if live.kind in STORED_NODE_EVENTS:
            self.recorder.submit_events(
                [
                    EventRecord(
                        job_id=job.id,
                        kind=live.kind,
                        at=now,
                        loop=live.loop,
                        iteration=live.iteration,
                        node=live.node,
                        run_id=live.run_id,
                        data=live.data,
                    )
                ]
            )

    def _next_timeout(self: _Driver) -> float | None:
        deadlines = [
            d
            for job in list(self._jobs.values())
            if not job.done.is_set() and (d := job.scheduler.next_deadline()) is not None
        ]
        flush_at = self.applier.loop_flush_at
        if flush_at is not None:
            deadlines.append(flush_at)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock())
