"""The driver: one loop that takes an input, lets a job's scheduler decide, and
carries out the commands.

The embedded engine and the coordinator are this same loop over different
adapters (an executor of local pools or of Celery workers; an in-process or a
broker queue backend). Journaling, takeover, reconciliation and the control
plane are components around it; the loop itself decides nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from nodes.artifacts import ArtifactStore
from nodes.errors import SegueError
from nodes.registry import NodeRegistry
from orchestrator.driver.applier import Applier
from orchestrator.driver.executor import Executor, ExecutorFactory
from orchestrator.driver.inputs import (
    Chase,
    Flush,
    Input,
    Inspect,
    NodeReport,
    Reconcile,
    Results,
    Schedule,
    Stop,
)
from orchestrator.driver.jobs import DrivenJob
from orchestrator.driver.journal import Journal
from orchestrator.driver.plans import PlanCache
from orchestrator.driver.serving import Serving
from orchestrator.driver.takeover import Takeover
from orchestrator.errors import DriverFailed, JobWaitTimeout, UnknownJobError
from orchestrator.inflight import IN_FLIGHT_EVENT, keep_in_flight
from orchestrator.logs import LOGS_EVENT, keep_logs
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan
from orchestrator.queues import MemoryQueueBackend, QueueBackend, queue_key
from orchestrator.results import RunResult
from orchestrator.runner import DEFAULT_THRESHOLD, NodeRunner
from orchestrator.scheduler import Scheduler, Start
from orchestrator.store.base import Store
from orchestrator.store.batching import BatchingRecorder
from orchestrator.streams.channels import MemoryStreamHub, StreamHub
from orchestrator.submission import check_inputs, record_submission
from orchestrator.views import JobEvent, JobResult

T = TypeVar("T")
log = logging.getLogger("segue.driver")
# A run that simply succeeded is stored as its node_runs row; the event log keeps
# the transitions worth replaying (job, loop, retrying, failed, skipped, cancelled).
QUIET_RUN_STATUSES = frozenset({"succeeded"})


class Driver(Serving):
    """Drives jobs: owns their schedulers on one thread, fed through an inbox.

    Args:
        store: Where jobs, loops, runs, events and the journal are recorded.
        artifacts: Where artifact bytes live.
        registry: The node types jobs may use.
        executor: Builds the executor runs are dispatched to.
        queues: The queue backend of queue nodes (in-process by default).
        threshold: Outputs with larger JSON become artifacts.
        clock: Seconds since the epoch (tests pass their own).
        worker: The name runs executed in this process record.
        log_every_run: Store an event for every run change (a cluster's clients
            read the event log); otherwise runs that simply succeeded are rows only.
        journal_first: Send the runs decided on a received queue message only
            once the journal holds that message (default: when the queue
            backend outlives this process, i.e. is not the in-process one). A
            driver that dies before then leaves the message unacknowledged; its
            successor receives it again and decides the same runs, which must
            not have been sent already (they would run twice).
        alone: Whether no other driver (coordinator or embedded engine) is
            alive now. A driver taking a job over gives back what a dead one
            held of shared (``scope: global``) queues only then (see
            :mod:`orchestrator.driver.orphans`); by default never.
        streams: Where the chunks of live stream edges pass (in-process by
            default); a job's channels are dropped when it ends.
    """

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        registry: NodeRegistry,
        executor: ExecutorFactory,
        queues: QueueBackend | None = None,
        threshold: int = DEFAULT_THRESHOLD,
        clock: Callable[[], float] = time.time,
        worker: str = "embedded",
        log_every_run: bool = False,
        journal_first: bool | None = None,
        alone: Callable[[], bool] | None = None,
        streams: StreamHub | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.queues = queues or MemoryQueueBackend()
        self.journal_first = (
            not isinstance(self.queues, MemoryQueueBackend)
            if journal_first is None
            else journal_first
        )
        self.alone = alone or (lambda: False)
        self.clock = clock
        self.recorder = BatchingRecorder(store)
        self.journal = Journal(self.recorder)
        self.plans = PlanCache(store, registry)
        self.runner = NodeRunner(
            registry,
            artifacts,
            cache=store,
            queues=self.queues,
            threshold=threshold,
            on_event=self.report,
            worker=worker,
            streams=streams if streams is not None else MemoryStreamHub(),
        )
        self.executor: Executor = executor(self.runner, self.post_results)
        self.applier = Applier(
            store,
            self.recorder,
            self.queues,
            artifacts,
            frozenset() if log_every_run else QUIET_RUN_STATUSES,
            self.runner.streams,
        )
        self.takeover = Takeover(self)
        self._inbox: queue.SimpleQueue[Input] = queue.SimpleQueue()
        self._jobs: dict[str, DrivenJob] = {}
        self._jobs_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="segue-driver", daemon=True)
        self._thread.start()

    # what others put in ---------------------------------------------------------------
    def put(self, item: Input) -> None:
        """Hand the driver an input (safe from any thread)."""
        self._inbox.put(item)

    def submit(
        self,
        workflow: Workflow,
        inputs: dict[str, Any] | None = None,
        owner: str | None = None,
        lease_s: float = 0.0,
    ) -> str:
        """Validate, plan, record and start a job (held by ``owner`` for ``lease_s``);
        returns its id.

        Raises:
            WorkflowInvalid: the workflow or its inputs are invalid.
        """
        now = self.clock()
        plan, digest = self.plans.plan(workflow, now)
        values = check_inputs(plan, dict(inputs or {}))
        job_id = uuid.uuid4().hex[:16]
        lease_until = now + lease_s if owner is not None else None
        record_submission(
            self.store, plan, workflow.name, digest, values, job_id, now, owner, lease_until
        )
        self.start(job_id, plan, values)
        return job_id

    def start(self, job_id: str, plan: Plan, inputs: dict[str, Any]) -> DrivenJob:
        """Drive a job just recorded ``pending`` in the store, from its start."""
        job = self.hold(job_id, plan, inputs)
        self._inbox.put(Schedule(job_id, Start()))
        return job

    def hold(self, job_id: str, plan: Plan, inputs: dict[str, Any]) -> DrivenJob:
        """Take a job into this driver (subscribing its queue readers); not started yet."""
        for q in plan.queues.values():
            for reader in q.readers:
                self.queues.subscribe(
                    queue_key(job_id, q.name, q.scope), reader.group or reader.loop
                )
        job = DrivenJob(job_id, plan, Scheduler(job_id, plan, inputs))
        with self._jobs_lock:
            self._jobs[job_id] = job
        return job

    def adopt(
        self,
        record: Any,
        backlog: list[RunResult] | None = None,
        on_journaled: Callable[[], None] | None = None,
    ) -> bool:
        """Drive a job found in the store (see :class:`Takeover`); False if driven here."""
        with self._jobs_lock:
            if record.id in self._jobs:
                return False
        return self.takeover.adopt(record, backlog or [], on_journaled)

    def post(self, job_id: str, event: Any) -> None:
        """Feed a scheduler event (a control request, a cancel, a resend) to a job."""
        self._inbox.put(Schedule(job_id, event))

    def post_results(
        self, results: list[RunResult], on_journaled: Callable[[], None] | None = None
    ) -> None:
        """Feed finished runs to their jobs; ``on_journaled`` see :class:`Results`."""
        self._inbox.put(Results(results, on_journaled))

    def report(self, run_id: str, kind: str, data: Any) -> None:
        """A node reported progress or a preview; a run's log is kept here, on the
        reporting thread (a pool's), never on the driver's."""
        if kind == LOGS_EVENT:
            try:
                keep_logs(self.store, run_id, data)
            except (SegueError, ValueError) as exc:
                log.warning("could not keep the log of run %s: %s", run_id, exc)
            return
        if kind == IN_FLIGHT_EVENT:
            self._in_flight(data)
            return
        self._inbox.put(NodeReport(run_id, kind, data))

    def _in_flight(self, states: list[tuple[str, dict[str, Any]]]) -> None:
        """Runs have been queued or running for a while: their rows and events say
        so (never over a finished run), and their jobs' listeners hear it."""
        try:
            events = keep_in_flight(self.store, states)
        except (SegueError, ValueError, KeyError) as exc:
            log.warning("could not record %d runs in flight: %s", len(states), exc)
            return
        for event in events:
            job = self._jobs.get(event.job_id)
            if job is not None:
                job.publish_live(JobEvent.of(event))

    def reconcile(self, older_than_s: float) -> None:
        """Chase runs dispatched over ``older_than_s`` ago that never reported."""
        self._inbox.put(Reconcile(older_than_s))

    def chase(self, job_id: str, run_ids: frozenset[str], reason: str) -> None:
        """Answer from the store, or send again, runs no live worker will report."""
        self._inbox.put(Chase(job_id, run_ids, reason))

    def inspect(self, read: Callable[[Scheduler], T]) -> dict[str, T]:
        """``read`` applied to every job's scheduler, on the driver's thread."""
        reply: queue.SimpleQueue[dict[str, T]] = queue.SimpleQueue()
        self._inbox.put(Inspect(read, reply))
        return reply.get(timeout=30)

    def drop(self, job_id: str) -> None:
        """Stop driving a job (another driver holds it now); nothing is cancelled."""
        with self._jobs_lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            job.fail_driver(RuntimeError("another driver took this job over"))

    # what others read -----------------------------------------------------------------
    @property
    def jobs(self) -> dict[str, DrivenJob]:
        """The jobs held here, by id (read on the driver's thread, or copy first)."""
        return self._jobs

    def job(self, job_id: str) -> DrivenJob:
        """A job driven here; raises :class:`UnknownJobError` naming it."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(job_id, "it is not driven by this process")
        return job

    @property
    def failure(self) -> BaseException | None:
        """What stopped the driver's thread, or ``None`` while it serves."""
        return self._failure

    def driving(self) -> list[str]:
        """Ids of the jobs driven here that have not ended."""
        with self._jobs_lock:
            return [j.id for j in self._jobs.values() if not j.done.is_set()]

    def desired(self, job_id: str, loop: str) -> str | None:
        """What a job's scheduler last wanted of a loop (``None``: job not driven here)."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        return None if job is None else job.desired.get(loop, "running")

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Block until a job driven here ends; ``TimeoutError`` after ``timeout`` s."""
        job = self.job(job_id)
        if not job.done.wait(timeout):
            raise JobWaitTimeout(job_id, timeout)
        if self._failure is not None:
            raise DriverFailed(str(self._failure)) from self._failure
        assert job.result is not None
        return job.result

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        """Every event of a job driven here from its start; ends after its final event."""
        return self.job(job_id).events(timeout)

    def flush(self) -> None:
        """Write everything recorded so far to the store."""
        done = threading.Event()
        self._inbox.put(Flush(done))
        done.wait(30)
        self.recorder.flush()

    def close(self) -> None:
        """Stop the thread and the executor; write what is buffered. Jobs are left
        as they are (a driver that stops hands its jobs on)."""
        self._inbox.put(Stop())
        self._thread.join(timeout=30)
        self.executor.close(wait=False)
        self.recorder.close()
