"""The embedded engine: the scheduler driven in-process over local pools.

One engine thread owns every job's :class:`~orchestrator.scheduler.Scheduler`.
It takes events from an inbox (finished runs from the pools, requests from
clients, its own timers), lets the scheduler decide, and carries out the
commands: dispatch to the executor, acknowledge queue messages, record runs,
loops and events in the store, and wake clients. It decides nothing itself.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from nodes.artifacts import ArtifactStore
from nodes.registry import NodeRegistry
from orchestrator.client.types import JobEvent, JobResult, LoopInfo, RunInfo
from orchestrator.engine.applier import CommandApplier
from orchestrator.engine.executor import Executor, ExecutorFactory, LocalExecutor
from orchestrator.engine.gctune import gc_tuning
from orchestrator.engine.jobs import EngineJob, check_inputs, record_submission
from orchestrator.engine.takeover import Takeover
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow
from orchestrator.queues import MemoryQueueBackend, QueueBackend, queue_key
from orchestrator.runner import DEFAULT_THRESHOLD, NodeRunner
from orchestrator.runtime.states import DesiredLoopState
from orchestrator.scheduler import (
    CancelJob,
    Command,
    LoopControl,
    RunFinished,
    Scheduler,
    Start,
    Tick,
)
from orchestrator.store.base import EventRecord, LoopRecord, Store
from orchestrator.store.batching import BatchingRecorder

# A run that simply succeeded is stored as its node_runs row; the event log keeps
# the transitions worth replaying (job, loop, retrying, failed, skipped, cancelled).
QUIET_RUN_STATUSES = frozenset({"succeeded"})
# Previews go to the event log; progress is shown live only (a node may report it often).
STORED_NODE_EVENTS = frozenset({"preview"})
PLAN_CACHE_SIZE = 64
CLOSE_WAIT_S = 10.0
_STOP = object()


class Reported(list[RunFinished]):
    """Results reported from elsewhere, with what to call once they are journaled."""

    def __init__(self, results: list[RunFinished], on_journaled: Callable[[], None]) -> None:
        super().__init__(results)
        self.on_journaled = on_journaled


class Engine(CommandApplier, Takeover):
    """Runs jobs in this process.

    Args:
        store: Where jobs, loops, runs and events are recorded.
        artifacts: Where artifact bytes live.
        registry: The node types jobs may use.
        queues: The queue backend (in-process by default).
        threads: Thread pool size.
        processes: Process pool size.
        clock: Seconds since the epoch (tests pass their own).
    """

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        registry: NodeRegistry,
        queues: QueueBackend | None = None,
        threads: int | None = None,
        processes: int | None = None,
        artifacts_root: str | None = None,
        threshold: int = DEFAULT_THRESHOLD,
        gc_threshold: int = 0,
        clock: Callable[[], float] = time.time,
        executor: ExecutorFactory | None = None,
        worker: str = "embedded",
        log_every_run: bool = False,
        journal: bool = False,
    ) -> None:
        self.store = store
        self.registry = registry
        self.queues = queues or MemoryQueueBackend()
        self.clock = clock
        self.recorder = BatchingRecorder(store)
        self.runner = NodeRunner(
            registry,
            artifacts,
            cache=store,
            queues=self.queues,
            threshold=threshold,
            on_event=self._node_event,
            worker=worker,
        )
        self.executor: Executor = (
            executor(self.runner, self._post_results)
            if executor is not None
            else LocalExecutor(self.runner, self._post_results, threads, processes, artifacts_root)
        )
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._jobs: dict[str, EngineJob] = {}
        self._plans: dict[str, Plan] = {}
        self._jobs_lock = threading.Lock()
        self._loop_changes: dict[tuple[str, str], LoopRecord] = {}
        self._loop_flush_at = 0.0
        self._gc = gc_tuning(gc_threshold)
        # Clients of an embedded engine see every event live; clients of a cluster
        # read the event log, so a coordinator logs every run event.
        self._quiet = frozenset() if log_every_run else QUIET_RUN_STATUSES
        # A coordinator journals every scheduler input, so that another one can
        # replay a job it takes over; an embedded engine's jobs die with it.
        self._journal = journal
        self._thread = threading.Thread(target=self._serve, name="segue-engine", daemon=True)
        self._failure: BaseException | None = None
        self._thread.start()

    # client requests ----------------------------------------------------------------
    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> str:
        """Validate, plan and start a job; returns its id.

        Raises:
            WorkflowInvalid: the workflow or its inputs are invalid.
        """
        now = self.clock()
        plan, digest = self._plan(workflow, now)
        inputs = check_inputs(plan, dict(inputs or {}))
        job_id = record_submission(self.store, plan, workflow.name, digest, inputs, now)
        for q in plan.queues.values():
            for reader in q.readers:
                self.queues.subscribe(
                    queue_key(job_id, q.name, q.scope), reader.group or reader.loop
                )
        job = EngineJob(job_id, plan, Scheduler(job_id, plan, inputs))
        with self._jobs_lock:
            self._jobs[job_id] = job
        self._inbox.put((job_id, Start()))
        return job_id

    def _plan(self, workflow: Workflow, now: float) -> tuple[Plan, str]:
        """The workflow's plan and digest; each version is validated, planned and stored once."""
        text = workflow.model_dump_json(by_alias=True, exclude_unset=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._jobs_lock:
            plan = self._plans.get(digest)
        if plan is None:
            plan = compile_workflow(workflow, self.registry)
            self.store.save_workflow(workflow.name, digest, json.loads(text), now)
            with self._jobs_lock:
                if len(self._plans) >= PLAN_CACHE_SIZE:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[digest] = plan
        return plan, digest

    def post(self, job_id: str, event: Any) -> None:
        """Feed a scheduler event (a control request, a cancel) to a job's scheduler."""
        self._inbox.put((job_id, event))

    def post_node_event(self, run_id: str, kind: str, data: Any) -> None:
        """A node running elsewhere reported progress or a preview."""
        self._node_event(run_id, kind, data)

    def post_results(
        self, results: list[RunFinished], on_journaled: Callable[[], None] | None = None
    ) -> None:
        """Feed finished runs reported from elsewhere (workers) to their jobs.

        ``on_journaled`` is called (on the recorder's thread) once the results
        and the runs' ends are in the store, if their job is still driven here:
        the coordinator then takes them off the broker.
        """
        self._inbox.put(results if on_journaled is None else Reported(results, on_journaled))

    def control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None:
        """Ask a loop to pause, resume or stop (applied at its next iteration boundary)."""
        job = self.job(job_id)
        if loop == "main":
            raise KeyError(f"loop 'main' of job {job_id} is the main stage; it cannot be paused")
        job.plan.loop(loop)  # raises KeyError naming the loops
        self.store.request_loop(job_id, loop, desired.value)
        self._inbox.put((job_id, LoopControl(loop, desired)))

    def cancel(self, job_id: str) -> None:
        """Cancel a job: in-flight runs are abandoned, every loop ends cancelled."""
        self.job(job_id)
        self.store.request_cancel(job_id)
        self._inbox.put((job_id, CancelJob()))

    def job(self, job_id: str) -> EngineJob:
        """The running or finished job ``job_id``; raises ``KeyError`` naming it."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id!r} in this engine")
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Block until the job ends; raises ``TimeoutError`` after ``timeout`` seconds.

        A job this engine does not hold but the store shows finished (run by an
        earlier client on the same home, say) is answered from the store.
        """
        try:
            job = self.job(job_id)
        except KeyError:
            stored = self._stored_result(job_id)
            if stored is None:
                raise
            return stored
        if not job.done.wait(timeout):
            raise TimeoutError(f"job {job_id} did not finish within {timeout}s")
        if self._failure is not None:
            raise RuntimeError(f"the engine failed: {self._failure}") from self._failure
        assert job.result is not None
        return job.result

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        """Every event of the job from its start; ends after the job's final event."""
        return self.job(job_id).events(timeout)

    def loops(self, job_id: str) -> list[LoopInfo]:
        """The job's loops as recorded."""
        self.flush()
        records = self.store.list_loops(job_id)
        if not records:
            self.job(job_id)  # raises KeyError naming a job this engine never had
        return [LoopInfo.of(r) for r in records]

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded, by loop, iteration and node."""
        self.flush()
        records = self.store.list_runs(job_id, loop)
        if not records:
            self.job(job_id)  # raises KeyError naming a job this engine never had
        return [RunInfo.of(r) for r in records]

    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per node health of a job."""
        job = self.job(job_id)
        return job.call(lambda: job.scheduler.node_health(), self._inbox)

    def flush(self) -> None:
        """Write everything recorded so far to the store."""
        done = threading.Event()
        self._inbox.put((None, done))
        done.wait(30)
        self.recorder.flush()

    def close(self, *, cancel_jobs: bool = True) -> None:
        """Cancel running jobs, stop the pools and write what is buffered.

        Cancelled jobs are waited for (at most ``CLOSE_WAIT_S``), so the store
        shows them ``cancelled`` rather than forever ``running``.
        ``cancel_jobs=False`` leaves them running in the store, for another
        engine to take over (a coordinator that stops hands its jobs on).
        """
        running = [job for job in list(self._jobs.values()) if not job.done.is_set()]
        if cancel_jobs:
            for job in running:
                self.cancel(job.id)
            deadline = time.monotonic() + CLOSE_WAIT_S
            for job in running:
                job.done.wait(max(0.0, deadline - time.monotonic()))
        self._inbox.put(_STOP)
        self._thread.join(timeout=30)
        self.executor.close(wait=False)
        self.recorder.close()
        self._gc.restore()

    # the engine thread --------------------------------------------------------------
    def _post_results(self, results: list[RunFinished]) -> None:
        self._inbox.put(results)

    def _node_event(self, run_id: str, kind: str, data: Any) -> None:
        self._inbox.put((run_id.split(":", 1)[0], ("node-event", run_id, kind, data)))

    def _serve(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:
            self._failure = exc
            for job in self._jobs.values():
                job.fail_engine(exc)

    def _step(self) -> bool:
        timeout = self._next_timeout()
        try:
            first = self._inbox.get(timeout=timeout)
        except queue.Empty:
            first = None
        batch = [] if first is None else [first]
        while len(batch) < 512:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        now = self.clock()
        results: dict[str, list[RunFinished]] = defaultdict(list)
        out: dict[str, list[Command]] = defaultdict(list)
        journaled: list[Callable[[], None]] = []
        for item in batch:
            if item is _STOP:
                return False
            if isinstance(item, list):
                for result in item:
                    results[result.run_id.split(":", 1)[0]].append(result)
                if isinstance(item, Reported) and self._held(item):
                    journaled.append(item.on_journaled)
                continue
            job_id, event = item
            if isinstance(event, threading.Event):
                self._flush_loops(now, force=True)
                event.set()
                continue
            if job_id is None and callable(event):  # engine-wide work (reconciling)
                event()
                continue
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if isinstance(event, tuple):
                live = job.node_event(event, now)
                if live.kind in STORED_NODE_EVENTS:
                    self.recorder.submit_events(
                        [
                            EventRecord(
                                job_id=job_id,
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
            elif callable(event):
                event()
            else:
                self._record_input(job_id, event, now)
                out[job_id].extend(job.scheduler.handle(event, now))
        for job_id, finished in results.items():
            job = self._jobs.get(job_id)
            if job is not None:
                for result in finished:
                    self._record_input(job_id, result, now)
                out[job_id].extend(job.scheduler.handle_many(finished, now))
        for job in self._jobs.values():
            deadline = job.scheduler.next_deadline()
            if deadline is not None and deadline <= now and not job.done.is_set():
                self._record_input(job.id, Tick(), now)
                out[job.id].extend(job.scheduler.handle(Tick(), now))
        for job_id, commands in out.items():
            self._carry_out(self._jobs[job_id], commands, now)
        self._flush_loops(now)
        for callback in journaled:
            self.recorder.when_written(callback)
        return True

    def _held(self, results: list[RunFinished]) -> bool:
        """Whether every result's job is driven here (a dropped job's are not journaled)."""
        return all(r.run_id.split(":", 1)[0] in self._jobs for r in results)

    def _next_timeout(self) -> float | None:
        deadlines = [
            d
            for job in self._jobs.values()
            if not job.done.is_set() and (d := job.scheduler.next_deadline()) is not None
        ]
        if self._loop_changes:
            deadlines.append(self._loop_flush_at)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock())
