"""The embedded engine: the driver over local pools, in this process.

Jobs submitted here are driven by this process's :class:`~orchestrator.driver.Driver`
and leased in the store like a coordinator's. A steward brings it the
requests written to the store from anywhere (``segue loops pause`` in another
terminal), and adopts jobs whose embedded process died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from nodes.artifacts import ArtifactStore
from nodes.registry import NodeRegistry
from orchestrator import health
from orchestrator.driver import Driver, Steward, owner_name
from orchestrator.driver.executor import ExecutorFactory
from orchestrator.driver.jobs import DrivenJob
from orchestrator.driver.steward import EMBEDDED
from orchestrator.engine.child import refuse_in_starting_child
from orchestrator.engine.executor import LocalExecutor
from orchestrator.engine.gctune import gc_tuning
from orchestrator.errors import UnknownJobError
from orchestrator.gpumemory import GpuMemory, TorchMemory
from orchestrator.gpumeter import GpuMeter
from orchestrator.liveness import (
    HEARTBEAT_INTERVAL_S,
    WORKER_TIMEOUT_S,
    Announcer,
    Holding,
)
from orchestrator.model.workflow import Workflow
from orchestrator.queues import QueueBackend
from orchestrator.reads import StoreReader
from orchestrator.requests import request_cancel, request_loop
from orchestrator.runner import DEFAULT_THRESHOLD, NodeRunner
from orchestrator.scheduler import CancelJob, LoopControl
from orchestrator.states import DesiredLoopState
from orchestrator.store.base import Store
from orchestrator.views import JobEvent, JobResult, LogLine, LogQuery, LoopInfo, RunInfo

CLOSE_WAIT_S = 10.0
LEASE_S = 30.0


class Engine:
    """Runs jobs in this process.

    Args:
        store: Where jobs, loops, runs and events are recorded.
        artifacts: Where artifact bytes live.
        registry: The node types jobs may use.
        queues: The queue backend (in-process by default).
        threads: Thread pool size.
        processes: Process pool size.
        clock: Seconds since the epoch (tests pass their own).
        executor: Builds another executor than the local pools (tests).
        gpu_memory: The GPU memory boundary GPU runs are measured through
            (default: torch's; tests pass :class:`~orchestrator.gpumemory.FakeMemory`).
        lease_s: How long this process's hold on its jobs lasts unless renewed.
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
        lease_s: float = LEASE_S,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        worker_timeout_s: float = WORKER_TIMEOUT_S,
        gpu_memory: GpuMemory | None = None,
    ) -> None:
        refuse_in_starting_child()
        self.gpu = GpuMeter(gpu_memory if gpu_memory is not None else TorchMemory())

        def local(runner: NodeRunner, sink: Callable[..., None]) -> LocalExecutor:
            return LocalExecutor(runner, sink, threads, processes, artifacts_root, gpu=self.gpu)

        self.store = store
        self.clock = clock
        self.lease_s = lease_s
        self._gc = gc_tuning(gc_threshold)
        self.driver = Driver(
            store, artifacts, registry, executor or local, queues, threshold, clock
        )
        self.reader = StoreReader(store)
        self._submitted: set[str] = set()  # jobs submitted here, not adopted
        self.steward = Steward(
            self.driver,
            store,
            owner_name(EMBEDDED),
            lease_s,
            self.driver.adopt,
            adopt_pending=False,
            clock=clock,
            owner_timeout_s=worker_timeout_s,
        )
        self.announcer = Announcer(
            store,
            self.steward.owner,
            "engine",
            lambda: Holding(holds=tuple(self.driver.driving()), info=self._gpu_info()),
            heartbeat_interval_s,
            clock=clock,
        ).start()
        self.steward.start()

    # requests ---------------------------------------------------------------------------
    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> str:
        """Validate, plan and start a job; returns its id.

        Raises:
            WorkflowInvalid: the workflow or its inputs are invalid.
        """
        job_id = self.driver.submit(workflow, inputs, self.steward.owner, self.lease_s)
        self._submitted.add(job_id)
        return job_id

    def control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None:
        """Ask a loop to pause, resume or stop (applied at its next iteration boundary)."""
        request_loop(self.store, job_id, loop, desired)
        if self.driver.desired(job_id, loop) is not None:
            self.driver.post(job_id, LoopControl(loop, desired))  # here: no need to wait

    def cancel(self, job_id: str) -> None:
        """Cancel a job: in-flight runs are abandoned, every loop ends cancelled."""
        request_cancel(self.store, job_id)
        if job_id in self.driver.driving():
            self.driver.post(job_id, CancelJob())

    # reads ------------------------------------------------------------------------------
    def job(self, job_id: str) -> DrivenJob:
        """A job driven by this engine; raises :class:`UnknownJobError`."""
        return self.driver.job(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Block until the job ends (one driven elsewhere is followed in the store)."""
        if self._here(job_id):
            return self.driver.wait(job_id, timeout)
        return self.reader.wait(job_id, timeout)

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        """Every event of the job from its start; ends after the job's final event."""
        if self._here(job_id):
            return self.driver.events(job_id, timeout)
        return self.reader.events(job_id, timeout)

    def loops(self, job_id: str) -> list[LoopInfo]:
        """The job's loops as recorded."""
        self.flush()
        return self.reader.loops(job_id)

    def logs(self, query: LogQuery) -> list[LogLine]:
        """The job's run logs and tracebacks, as the store holds them."""
        self.flush()
        return self.reader.logs(query)

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded, by loop, iteration and node."""
        self.flush()
        return self.reader.runs(job_id, loop)

    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per node health of a job, from its recorded runs (:func:`node_health`)."""
        return health.node_health(self.runs(job_id))

    def flush(self) -> None:
        """Write everything recorded so far to the store."""
        self.driver.flush()

    def _gpu_info(self) -> dict[str, object]:
        """The GPU runs measured here, for the heartbeat (metrics read them), once
        there are any; ``embedded``: this process serves no GPU queue."""
        if not self.gpu.runs:
            return {}
        return {"gpu": {**self.gpu.announce(), "embedded": True}}

    def _here(self, job_id: str) -> bool:
        try:
            self.driver.job(job_id)
        except UnknownJobError:
            return False
        return True

    # closing ----------------------------------------------------------------------------
    def close(self, *, cancel_jobs: bool = True) -> None:
        """Cancel the running jobs submitted here, stop the pools, write what is buffered.

        Cancelled jobs are waited for (at most ``CLOSE_WAIT_S``), so the store
        shows them ``cancelled`` rather than forever ``running``. Jobs adopted
        from a dead process (and all jobs, with ``cancel_jobs=False``) are left
        running with their leases ended, for the next engine or coordinator on
        the same store to take over at once.
        """
        self.steward.stop()
        running = self.driver.driving()
        if cancel_jobs:
            mine = [job_id for job_id in running if job_id in self._submitted]
            for job_id in mine:
                self.cancel(job_id)
            deadline = time.monotonic() + CLOSE_WAIT_S
            for job_id in mine:
                self.driver.job(job_id).done.wait(max(0.0, deadline - time.monotonic()))
        self.driver.close()
        self.steward.release(running)  # what did not end is taken over at once
        self.announcer.stop()
        self._gc.restore()
