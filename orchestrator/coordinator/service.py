"""``segue coordinator``: the scheduler driven over Celery workers.

The coordinator reads the results queue of every job it drives and the
wake-ups on ``segue.control``, and scans the store (the source of truth) for
submitted jobs, loop requests and cancels; the engine decides, the Celery
executor dispatches, and the engine's recorder writes runs and the journal.
A result is taken off the broker only once it is journaled. Clients only write
requests; workers only claim the runs they take.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from functools import partial
from typing import Any

from nodes.errors import SegueError
from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.artifacts import open_artifacts
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.channels import Channels, Delivery
from orchestrator.engine.engine import Engine
from orchestrator.engine.executor import ExecutorFactory
from orchestrator.heartbeat import beat
from orchestrator.queues import KombuQueueBackend, QueueBackend
from orchestrator.runtime.messages import RunResult
from orchestrator.runtime.states import DesiredLoopState, JobStatus, LoopStatus
from orchestrator.scheduler import CancelJob, LoopControl, RunFinished
from orchestrator.settings import Settings
from orchestrator.store import Store, open_store
from orchestrator.store.base import JobRecord

log = logging.getLogger("segue.coordinator")
SCAN_INTERVAL_S = 1.0


class Coordinator:
    """Drives submitted jobs to their end over workers (Celery's, unless told otherwise).

    The adapters not given are built from ``settings``: the store at
    ``database_url``, the channels and the queue backend on ``broker_url``, and a
    Celery executor.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        registry: NodeRegistry | None = None,
        queues: QueueBackend | None = None,
        *,
        store: Store | None = None,
        channels: Channels | None = None,
        executor: ExecutorFactory | None = None,
    ) -> None:
        self.settings = settings = settings or Settings()
        self.store = (
            store if store is not None else open_store(settings.database_url, settings.home)
        )
        self.channels = channels if channels is not None else Channels(settings.broker_url)
        if executor is None:
            executor = partial(CeleryExecutor, make_celery(settings))
        if queues is None:
            broker_queues = KombuQueueBackend(
                settings.broker_url, visibility_timeout_s=settings.visibility_timeout_s
            )
            # The coordinator is the only reader of queue-node queues: messages a
            # previous coordinator held unacknowledged come back now, not after
            # the visibility timeout.
            broker_queues.recover()
            queues = broker_queues
        self.engine = Engine(
            self.store,
            open_artifacts(settings.artifacts_location()),
            registry or default_registry(),
            queues=queues,
            threshold=settings.artifact_threshold_bytes,
            gc_threshold=settings.gc_threshold,
            executor=executor,
            worker="coordinator",
            log_every_run=True,
            journal=True,
        )
        self.name = settings.coordinator_name or f"{socket.gethostname()}-{os.getpid()}"
        self._cancelled: set[str] = set()
        self._followed: set[str] = set()  # jobs whose results queue this coordinator reads
        self._stop = threading.Event()

    # the service loop -----------------------------------------------------------------
    def run(self) -> None:
        """Serve until :meth:`stop` (or SIGTERM via the CLI)."""
        self.channels.consume(self._on_results, self._on_control)
        next_scan = 0.0
        next_reconcile = time.monotonic() + self.settings.visibility_timeout_s
        heartbeat = self.settings.heartbeat_path
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_reconcile:
                # Longer than the broker's own redelivery, so a live worker's slow
                # run is never sent twice by us as well.
                self.engine.reconcile(self.settings.visibility_timeout_s * 1.5)
                next_reconcile = now + max(1.0, self.settings.visibility_timeout_s / 2)
            if now >= next_scan:
                self.renew()
                self.scan()
                next_scan = now + SCAN_INTERVAL_S
                if heartbeat is not None:
                    beat(heartbeat)
            self.channels.drain(timeout=min(0.5, max(0.01, next_scan - time.monotonic())))
        self.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()

    def close(self) -> None:
        """Hand the jobs on and release the engine and connections.

        Jobs are not cancelled: what is buffered is written, and their leases
        end now, so another coordinator (or this one, restarted) takes them
        over at its next scan instead of after the lease.
        """
        driving = self.engine.driving()
        self.engine.close(cancel_jobs=False)
        now = time.time()
        for job_id in driving:
            self.store.lease_job(job_id, self.name, 0.0, now)
        if driving:
            log.info("handed %d running job(s) on", len(driving))
        self.channels.release()  # what was journaled while stopping
        self.channels.close()

    # intake ---------------------------------------------------------------------------
    def _on_results(self, job_id: str, deliveries: list[Delivery]) -> None:
        finished, tokens = self._results(job_id, deliveries)
        if finished:
            # One scheduler step for the batch; off the broker once journaled.
            self.engine.post_results(finished, partial(self.channels.done, job_id, tokens))

    def _results(
        self, job_id: str, deliveries: list[Delivery]
    ) -> tuple[list[RunFinished], list[object]]:
        """The run results among ``deliveries`` and their tokens; progress events are
        passed on, and they and malformed messages are released at once."""
        finished: list[RunFinished] = []
        tokens: list[object] = []
        released: list[object] = []
        for body, token in deliveries:
            event = body.get("node_event")
            if isinstance(event, dict):
                self.engine.post_node_event(
                    str(event.get("run_id")), str(event.get("kind")), event.get("data")
                )
                released.append(token)
                continue
            try:
                result = RunResult.model_validate(body)
            except ValueError:
                log.warning("dropped a malformed run result of job %s: %.200r", job_id, body)
                released.append(token)
                continue
            finished.append(RunFinished.from_result(result))
            tokens.append(token)
        if released:
            self.channels.done(job_id, released)
        return finished, tokens

    def _on_control(self, body: dict[str, Any]) -> None:
        self.scan(body.get("job"))

    def scan(self, job_id: str | None = None) -> None:
        """Adopt submitted jobs and apply loop requests and cancels found in the store."""
        records = (
            [r for r in [self.store.get_job(job_id)] if r is not None]
            if job_id
            else self.store.list_jobs(status=JobStatus.PENDING.value, limit=1000)
            + self.store.list_jobs(status=JobStatus.RUNNING.value, limit=1000)
        )
        now = time.time()
        lease = self.settings.coordinator_lease_s
        for record in records:
            if JobStatus(record.status).terminal:
                continue
            if not self.store.lease_job(record.id, self.name, now + lease, now):
                continue  # another live coordinator drives it
            try:
                adopted = self._adopt(record)
            except SegueError as exc:
                log.error("job %s cannot run: %s", record.id, exc)
                self.store.update_job(record.id, status="failed", at=time.time(), error=str(exc))
                self._forget(record.id, delete=True)
                continue
            if adopted:
                log.info("adopted job %s (%s)", record.id, record.workflow)
            self._requests(record.id, record.cancel_requested)

    def _adopt(self, record: JobRecord) -> bool:
        """Read the job's results queue, then drive the job (``False``: driven already).

        The queue is followed before the job starts, so no result can miss it;
        a job taken over gets what its last coordinator left there.
        """
        if record.id in self._followed:
            return self.engine.adopt(record)
        self._followed.add(record.id)
        finished, tokens = self._results(record.id, self.channels.follow(record.id))
        return self.engine.adopt(record, finished, partial(self.channels.done, record.id, tokens))

    def _forget(self, job_id: str, delete: bool) -> None:
        if job_id in self._followed:
            self._followed.discard(job_id)
            self.channels.forget(job_id, delete=delete)

    def renew(self) -> None:
        """Extend the leases of the jobs this coordinator drives; let go of lost ones,
        and of the results queues of jobs that ended."""
        now = time.time()
        until = now + self.settings.coordinator_lease_s
        driving = self.engine.driving()
        for job_id in driving:
            if not self.store.lease_job(job_id, self.name, until, now):
                log.warning("lost the lease of job %s to another coordinator", job_id)
                self.engine.drop(job_id)
                self._forget(job_id, delete=False)
        for job_id in self._followed - set(driving):
            self._forget(job_id, delete=True)  # it ended: every result is journaled

    def _requests(self, job_id: str, cancel: bool) -> None:
        if cancel and job_id not in self._cancelled:
            self._cancelled.add(job_id)
            self.engine.post(job_id, CancelJob())
        for loop in self.store.list_loops(job_id):
            if loop.name == "main" or LoopStatus(loop.status).terminal:
                continue
            if self.engine.desired(job_id, loop.name) != loop.desired:
                self.engine.post(job_id, LoopControl(loop.name, DesiredLoopState(loop.desired)))
