"""``segue coordinator``: the scheduler driven over Celery workers.

The coordinator reads the results queue of every job it drives and the
wake-ups on ``segue.control``, and scans the store (the source of truth) for
submitted jobs, loop requests and cancels; the driver decides, the Celery
executor dispatches, and the driver's recorder writes runs and the journal.
A result is taken off the broker only once it is journaled. Clients only write
requests; workers only claim the runs they take.

The coordinator outlives its broker and database: a call that fails because
either is away (after the retries of :mod:`orchestrator.broker` and the store)
ends the turn, and the loop tries again with backoff
(:func:`~orchestrator.outage.backoff`), still writing its heartbeat; the drop and
the return are logged once each. It exits - with an error, so a supervisor
restarts it - only on an error that waiting will not fix, or when its driver
failed.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any

from pydantic import ValidationError

from nodes.errors import SegueError
from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.artifacts import open_artifacts
from orchestrator.broker import REDIS_SCHEMES, scheme
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.celery.placement import GpuPlacement
from orchestrator.channels import Channels, Delivery
from orchestrator.coordinator.watch import Watch
from orchestrator.depths import TaskQueueCounter
from orchestrator.driver import Driver, Steward, owner_name
from orchestrator.driver.executor import ExecutorFactory
from orchestrator.engine.gctune import gc_tuning
from orchestrator.errors import BrokerError, DriverFailed
from orchestrator.heartbeat import beat
from orchestrator.liveness import alive
from orchestrator.messages import ControlMessage, NodeEventMessage
from orchestrator.outage import backoff
from orchestrator.queues import KombuQueueBackend, QueueBackend
from orchestrator.results import RunResult
from orchestrator.settings import Settings
from orchestrator.store import Store, StoreUnavailable, open_store
from orchestrator.store.base import JobRecord
from orchestrator.streams.hubs import open_stream_hub

log = logging.getLogger("segue.coordinator")
SCAN_INTERVAL_S = 1.0
CATCH_UP_ROUNDS = 50
"""Reads of the broker before a liveness check, at most (each of up to a batch of results
per job)."""


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
        self._tasks: TaskQueueCounter | None = None
        if executor is None:
            placement = GpuPlacement(self.store.list_processes, settings.worker_timeout_s)
            executor = partial(CeleryExecutor, make_celery(settings), placement=placement)
            if scheme(settings.broker_url) in REDIS_SCHEMES:
                self._tasks = TaskQueueCounter(settings.broker_url)
        self._probe: KombuQueueBackend | None = None
        if queues is None:
            # What a dead coordinator held unacknowledged is settled when its jobs
            # are taken over (orchestrator.driver.orphans), not restored wholesale
            # here (KombuQueueBackend.recover): other coordinators may be alive and
            # holding messages, and a message whose iteration the journal of its
            # job holds must not come back.
            queues = self._probe = KombuQueueBackend(
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
            streams=open_stream_hub(settings.broker_url),
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
        waiting = self._tasks.waiting if self._tasks is not None else None
        self.watch = Watch(
            self.driver, self.store, self.name, settings, waiting=waiting, catch_up=self._catch_up
        )
        self._followed: set[str] = set()  # jobs whose results queue this coordinator reads
        self._stop = threading.Event()

    # the service loop -----------------------------------------------------------------
    def run(self) -> None:
        """Serve until :meth:`stop` (or SIGTERM via the CLI), then hand the jobs on.

        Raises:
            DriverFailed: The driver's thread died (the jobs go to the next coordinator).
            Exception: A broker or database error that waiting will not fix.
        """
        self.watch.start()
        try:
            self._serve()
        finally:
            self.close()

    def _serve(self) -> None:
        consuming = False
        next_scan = next_watch = 0.0
        next_reconcile = time.monotonic() + self.settings.visibility_timeout_s
        failures = 0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if not consuming:
                    self._start()
                    consuming = True
                if now >= next_reconcile:
                    # The backstop behind liveness: longer than the broker's own
                    # redelivery, so a live worker's slow run is never sent twice.
                    self.driver.reconcile(self.settings.visibility_timeout_s * 1.5)
                    next_reconcile = now + max(1.0, self.settings.visibility_timeout_s / 2)
                if now >= next_scan:
                    self._beat()
                    self.renew()
                    self.scan()
                    next_scan = now + SCAN_INTERVAL_S
                if now >= next_watch:
                    # On this thread, right after a drain: results already on the
                    # broker reach the driver before any chase of their runs.
                    self.watch.check()
                    next_watch = now + self.settings.heartbeat_interval_s
                self.channels.drain(timeout=min(0.5, max(0.01, next_scan - time.monotonic())))
            except Exception as exc:
                if not self._away(exc):
                    raise
                failures += 1
                self._beat()  # waiting for a service is not being stuck
                self._stop.wait(max(backoff(failures), 0.05))
                continue
            if failures:
                failures = 0
                self.channels.outage.ok()
            if self.driver.failure is not None:
                raise DriverFailed(str(self.driver.failure)) from self.driver.failure

    def _start(self) -> None:
        """The first calls to the broker (where a wrong URL shows): list the queue-node
        queues, consume wake-ups."""
        try:
            if self._probe is not None:
                self._probe.probe()  # a broker that refuses us says so here
                self._probe = None
            self.channels.consume(self._on_results, self._on_control)
        except Exception as exc:
            if self.channels.transient(exc):
                raise
            raise BrokerError(
                f"{self.channels.outage.what} refused the coordinator ({type(exc).__name__}: "
                f"{exc}); check SEGUE_BROKER_URL"
            ) from exc

    def _away(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the broker or the database is away for now (logged once)."""
        if isinstance(exc, _Unreachable | StoreUnavailable):
            return True  # the store logs its own outages
        if self.channels.transient(exc):
            self.channels.outage.failed(exc, "reading results and wake-ups")
            return True
        return False

    def _beat(self) -> None:
        if self.settings.heartbeat_path is not None:
            beat(self.settings.heartbeat_path)

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
        self._gc.restore()
        try:
            self.watch.stop()
        except Exception as exc:  # the database is away: it is found silent instead
            log.warning("could not announce this coordinator stopped: %s", exc)
        try:
            self.steward.release(driving)
            if driving:
                log.info("handed %d running job(s) on", len(driving))
        except Exception as exc:  # the database is away: the leases run out instead
            log.warning(
                "could not hand %d job(s) on (%s); another coordinator takes them "
                "when their leases end",
                len(driving),
                exc,
            )
        try:
            self.channels.release()  # what was journaled while stopping
        except Exception as exc:  # the broker is away: the next reader skips them as journaled
            log.warning("could not take journaled results off the broker: %s", exc)
        self.channels.close()
        if self._tasks is not None:
            self._tasks.close()

    # intake ---------------------------------------------------------------------------
    def _catch_up(self) -> None:
        """Deliver the results already waiting on the broker (for the watch); bounded,
        so a stream of results that never pauses cannot hold this thread."""
        for _ in range(CATCH_UP_ROUNDS):
            if not self.channels.drain(timeout=0.001):
                return

    def _on_results(self, job_id: str, deliveries: list[Delivery]) -> None:
        finished, tokens = self._results(job_id, deliveries)
        in_flight = getattr(self.driver.executor, "in_flight", None)  # a CeleryExecutor's
        if in_flight is not None:
            for result in finished:
                in_flight.ended(result.run_id)
        if finished:
            # One scheduler step for the batch; off the broker once journaled.
            self.driver.post_results(finished, partial(self.channels.done, job_id, tokens))

    def _results(
        self, job_id: str, deliveries: list[Delivery]
    ) -> tuple[list[RunResult], list[object]]:
        """The run results among ``deliveries`` and their tokens; progress events are
        passed on, and they and malformed messages are released at once (a malformed
        one logged once: it must not stop the job, nor this coordinator)."""
        finished: list[RunResult] = []
        tokens: list[object] = []
        released: list[object] = []
        for body, token in deliveries:
            item = _intake(job_id, body)
            if isinstance(item, RunResult):
                finished.append(item)
                tokens.append(token)
                continue
            if isinstance(item, NodeEventMessage):
                self.driver.report(item.run_id, item.kind, item.data)
            else:
                log.warning("dropped a message on the results queue of job %s: %s", job_id, item)
            released.append(token)
        if released:
            self.channels.done(job_id, released)
        return finished, tokens

    def _on_control(self, body: Any) -> None:
        try:
            message = ControlMessage.model_validate(body)
        except ValidationError as exc:
            log.warning("dropped a malformed control message (%s): %.200r", _reason(exc), body)
            return
        self.scan(message.job)

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
        try:
            backlog = self.channels.follow(record.id)
        except Exception as exc:
            if self.channels.transient(exc):
                self.channels.outage.failed(exc, f"reading the results of job {record.id}")
                raise _Unreachable(f"could not adopt job {record.id}: {exc}") from exc
            raise
        self._followed.add(record.id)
        finished, tokens = self._results(record.id, backlog)
        try:
            return self.driver.adopt(
                record, finished, partial(self.channels.done, record.id, tokens)
            )
        except SegueError as exc:
            if not exc.retryable:
                self._forget(record.id, delete=True)  # it cannot run here: it is marked failed
                raise
            self._forget(record.id, delete=False)  # read again when adopting it again
            raise _Unreachable(f"could not adopt job {record.id}: {exc}") from exc
        except Exception:
            self._forget(record.id, delete=True)
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


def _intake(job_id: str, body: Any) -> RunResult | NodeEventMessage | str:
    """What a message on ``job_id``'s results queue is: a run's result, a node's live
    report, or why it is neither (a message for another job counts as malformed)."""
    if not isinstance(body, dict):
        return f"not a JSON object: {body!r:.200}"
    event = body.get("node_event")
    try:
        item: RunResult | NodeEventMessage = (
            RunResult.from_json(body) if event is None else NodeEventMessage.model_validate(event)
        )
    except ValidationError as exc:
        return f"malformed ({_reason(exc)}): {body!r:.200}"
    except ValueError as exc:
        return f"malformed ({exc}): {body!r:.200}"
    if not item.run_id.startswith(f"{job_id}:"):
        return f"run {item.run_id!r:.100} is not of this job: {body!r:.200}"
    return item


def _reason(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in error["loc"]) or "the message"
    return f"{where}: {error['msg']}"


class _Unreachable(Exception):
    """Adopting a job met a broker or database that is away: try at a later scan.

    Not a :class:`SegueError`, which would tell the steward the job cannot run here.
    """
