"""``segue coordinator``: the scheduler driven over Celery workers.

The coordinator reads the results queue of every job it drives and the
wake-ups on ``segue.control``, and scans the store (the source of truth) for
submitted jobs, loop requests and cancels; the driver decides, the Celery
executor dispatches, and the driver's recorder writes runs and the journal.
A result is taken off the broker only once it is journaled. Clients only write
requests; workers only claim the runs they take.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.artifacts import open_artifacts
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.channels import Channels, Delivery
from orchestrator.coordinator.watch import Watch
from orchestrator.driver import Driver, Steward, owner_name
from orchestrator.driver.executor import ExecutorFactory
from orchestrator.engine.gctune import gc_tuning
from orchestrator.liveness import alive
from orchestrator.messages import RunResult
from orchestrator.queues import KombuQueueBackend, QueueBackend
from orchestrator.scheduler import RunFinished
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
            # What a dead coordinator held unacknowledged is settled when its jobs
            # are taken over (orchestrator.driver.orphans), not restored wholesale
            # here (KombuQueueBackend.recover): other coordinators may be alive and
            # holding messages, and a message whose iteration the journal of its
            # job holds must not come back.
            queues = KombuQueueBackend(
                settings.broker_url, visibility_timeout_s=settings.visibility_timeout_s
            )
        self._gc = gc_tuning(settings.gc_threshold)
        self.driver = Driver(
            self.store,
            open_artifacts(settings.artifacts_location()),
            registry or default_registry(),
            executor,
            queues=queues,
            threshold=settings.artifact_threshold_bytes,
            worker="coordinator",
            log_every_run=True,
            alone=self._alone,
        )
        self.name = settings.coordinator_name or owner_name("coordinator")
        self.steward = Steward(
            self.driver,
            self.store,
            self.name,
            settings.coordinator_lease_s,
            self._adopt,
            adopt_pending=True,
            clock=time.time,
            owner_timeout_s=settings.worker_timeout_s,
        )
        self.watch = Watch(self.driver, self.store, self.name, settings)
        self._followed: set[str] = set()  # jobs whose results queue this coordinator reads
        self._stop = threading.Event()

    # the service loop -----------------------------------------------------------------
    def run(self) -> None:
        """Serve until :meth:`stop` (or SIGTERM via the CLI)."""
        self.channels.consume(self._on_results, self._on_control)
        self.watch.start()
        next_scan = next_watch = 0.0
        next_reconcile = time.monotonic() + self.settings.visibility_timeout_s
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_reconcile:
                # The backstop behind liveness: longer than the broker's own
                # redelivery, so a live worker's slow run is never sent twice.
                self.driver.reconcile(self.settings.visibility_timeout_s * 1.5)
                next_reconcile = now + max(1.0, self.settings.visibility_timeout_s / 2)
            if now >= next_scan:
                self.renew()
                self.scan()
                next_scan = now + SCAN_INTERVAL_S
            if now >= next_watch:
                # On this thread, right after a drain: results already on the
                # broker reach the driver before any chase of their runs.
                self.watch.check()
                next_watch = now + self.settings.heartbeat_interval_s
            self.channels.drain(timeout=min(0.5, max(0.01, next_scan - time.monotonic())))
        self.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()

    def close(self) -> None:
        """Hand the jobs on and release the driver and connections.

        Jobs are not cancelled: what is buffered is written, and their leases
        end now, so another coordinator (or this one, restarted) takes them
        over at its next scan instead of after the lease.
        """
        driving = self.driver.driving()
        self.driver.close()
        self.steward.release(driving)
        self.watch.stop()
        self._gc.restore()
        if driving:
            log.info("handed %d running job(s) on", len(driving))
        self.channels.release()  # what was journaled while stopping
        self.channels.close()

    # intake ---------------------------------------------------------------------------
    def _on_results(self, job_id: str, deliveries: list[Delivery]) -> None:
        finished, tokens = self._results(job_id, deliveries)
        if finished:
            # One scheduler step for the batch; off the broker once journaled.
            self.driver.post_results(finished, partial(self.channels.done, job_id, tokens))

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
                self.driver.report(
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
        """Adopt submitted and orphaned jobs; apply the requests found in the store."""
        self.steward.scan(job_id)

    def _alone(self) -> bool:
        """Whether no other coordinator or embedded engine is alive (see ``Driver``)."""
        now = time.time()
        timeout = self.settings.worker_timeout_s
        return not any(
            p.kind != "worker" and p.name != self.name and alive(p, now, timeout)
            for p in self.store.list_processes()
        )

    def _adopt(self, record: JobRecord) -> bool:
        """Read the job's results queue, then drive the job (``False``: driven already).

        The queue is followed before the job starts, so no result can miss it;
        a job taken over gets what its last coordinator left there.
        """
        if record.id in self._followed:
            return self.driver.adopt(record)
        self._followed.add(record.id)
        finished, tokens = self._results(record.id, self.channels.follow(record.id))
        try:
            return self.driver.adopt(
                record, finished, partial(self.channels.done, record.id, tokens)
            )
        except Exception:
            self._forget(record.id, delete=True)  # it cannot run here: it is marked failed
            raise

    def _forget(self, job_id: str, delete: bool) -> None:
        if job_id in self._followed:
            self._followed.discard(job_id)
            self.channels.forget(job_id, delete=delete)

    def renew(self) -> None:
        """Extend the leases of the jobs this coordinator drives; let go of lost ones,
        and of the results queues of jobs that ended."""
        for job_id in self.steward.renew():
            self._forget(job_id, delete=False)  # another coordinator reads it now
        for job_id in self._followed - set(self.driver.driving()):
            self._forget(job_id, delete=True)  # it ended: every result is journaled
