"""Dispatching node runs as Celery tasks.

Every run goes to the broker queue its route names, as the task of its node
type, with the run id as the task id. Queue nodes are the exception: they
read and write broker queues themselves and must hold a message unacknowledged
until their iteration ends, so they run here, in the coordinator: readers on a
small thread pool, writers one at a time in the order they were dispatched, so
that a loop's values reach their queue in its order (after a takeover too,
which sends the writes its dead predecessor had in flight before new ones).

While the broker is away, the tasks that could not be sent wait in an outbox
(:class:`~orchestrator.outage.Outbox`) and go out, in order, when it returns:
the driver's thread never waits for the broker. They go marked ``resent``
(some may have reached the broker before the error): a worker claims such a
run before it runs, and skips it if it finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis

from nodes.base import Role
from orchestrator.broker import redact
from orchestrator.celery.app import task_name
from orchestrator.celery.placement import READ_EVERY_S, GpuPlacement
from orchestrator.driver.executor import ResultSink
from orchestrator.inflight import IN_FLIGHT_S, InFlight
from orchestrator.outage import Outbox, watch
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch

log = logging.getLogger("segue.coordinator")
BATCH = 1000
"""Broker commands buffered before a batch of dispatches is flushed."""
KEEP_LIMIT = 1_000_000
"""The most dispatches kept while the broker is away (the scheduler bounds what is in flight)."""


class CeleryExecutor:
    """Publishes dispatches as Celery tasks; runs queue nodes locally."""

    def __init__(
        self,
        app: Celery,
        runner: NodeRunner,
        on_results: ResultSink,
        placement: GpuPlacement | None = None,
    ) -> None:
        self.app = app
        self.placement = placement
        self._held: list[Dispatch] = []  # GPU runs no live GPU worker fits yet
        self._holding: threading.Thread | None = None
        self._closing = threading.Event()
        self._held_lock = threading.Lock()
        self.runner = runner
        self.on_results = on_results
        # Tasks no worker has reported for a while show ``queued`` (a worker's own
        # claim shows ``running``); the coordinator ends them as results come.
        self.in_flight = InFlight(runner.on_event, IN_FLIGHT_S)
        self._local = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="segue-queues")
        self._writes = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="segue-writes")
        self._lock = threading.Lock()
        self._declared: set[str] = set()
        with app.connection_for_write() as probe:  # not connected: only its transport's errors
            self._transient: tuple[type[BaseException], ...] = (
                *probe.recoverable_connection_errors,
                *probe.recoverable_channel_errors,
                OperationalError,
                OSError,
            )
        self.outage = watch(
            f"the broker at {redact(str(app.conf.broker_url))}", logging.getLogger("segue.broker")
        )
        self._outbox: Outbox[Dispatch] = Outbox(
            self._send_again,
            self.transient,
            self.outage,
            describe=lambda dispatch: f"the task of run {dispatch.run_id}",
            limit=KEEP_LIMIT,
        )

    def transient(self, error: BaseException) -> bool:
        """Whether ``error`` says the broker is away for now."""
        return isinstance(error, self._transient)

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        """Publish every dispatch (queue nodes run on the local pool).

        On Redis the tasks of one scheduler step go out in one pipelined round
        trip (kombu's publish batch). The batch is not retried as a whole: if
        it fails, each task is sent again on its own with Celery's publish
        retries - a task sent twice is one run, its worker dedupes.
        """
        remote = []
        for dispatch in dispatches:
            if dispatch.node.role is Role.QUEUE_WRITER:
                self._writes.submit(self._run_local, dispatch)
            elif dispatch.node.role.queue:
                self._local.submit(self._run_local, dispatch)
            else:
                remote.append(dispatch)
        if not remote:
            return []
        for dispatch in remote:
            self.in_flight.queued(dispatch)
        if self.placement is not None:
            remote = self._hold_misfits(remote)
        self._send_out(remote)
        return []

    def _send_out(self, remote: list[Dispatch]) -> None:
        if not remote:
            return
        if self._outbox.kept:  # the broker is away: after the tasks waiting for it
            self._outbox.keep([d._replace(resent=True) for d in remote])
            return
        try:
            self._publish(remote)
        except Exception as exc:
            if not self.transient(exc):
                raise
            self._outbox.keep(
                [d._replace(resent=True) for d in remote], exc, f"sending {len(remote)} tasks"
            )
        else:
            self.outage.ok()

    def _hold_misfits(self, remote: list[Dispatch]) -> list[Dispatch]:
        """Keep back the GPU runs no live GPU worker fits (see :mod:`.placement`);
        returns the others. A thread sends those kept as soon as one fits."""
        placement = self.placement
        assert placement is not None
        held = [
            d
            for d in remote
            if d.node.route.gpu and placement.queue(d.node.route.queue, d.vram_mb) is None
        ]
        if not held:
            return remote
        with self._held_lock:
            self._held.extend(held)
            if self._holding is None:
                self._holding = threading.Thread(
                    target=self._send_held, name="segue-gpu-held", daemon=True
                )
                self._holding.start()
        kept = {d.run_id for d in held}
        return [d for d in remote if d.run_id not in kept]

    def _send_held(self) -> None:
        placement = self.placement
        assert placement is not None
        while not self._closing.wait(READ_EVERY_S):
            with self._held_lock:
                fits = [d for d in self._held if placement.queue(d.node.route.queue, d.vram_mb)]
                sent = {d.run_id for d in fits}
                self._held = [d for d in self._held if d.run_id not in sent]
            if fits:
                log.info("%d GPU run(s) held for a GPU that fits them are sent", len(fits))
                self._send_out(fits)

    def _publish(self, remote: list[Dispatch]) -> None:
        resent = [d for d in remote if d.resent]
        if resent:
            remote = [d for d in remote if not d.resent]
            with self._lock, self.app.producer_or_acquire() as producer:
                for dispatch in resent:
                    self._send(producer, [dispatch])
                    _to_head(producer, self._queue(dispatch))
        if not remote:
            return
        with self._lock, self.app.producer_or_acquire() as producer:
            batch = getattr(producer, "batch", None)  # kombu >= 5.7
            if batch is not None and len(remote) > 1:
                try:
                    with batch(max_size=BATCH):
                        self._send(producer, remote)
                    return
                except Exception as exc:  # the broker failed mid-batch: one by one, retried
                    log.warning("a batch of %d tasks failed (%s); sending each", len(remote), exc)
            self._send(producer, remote)

    def _send_again(self, dispatch: Dispatch) -> None:
        with self._lock, self.app.producer_or_acquire() as producer:
            self._send(producer, [dispatch])

    def _send(self, producer: Any, dispatches: Sequence[Dispatch]) -> None:
        """Publish each dispatch as a Celery task message.

        What ``Celery.send_task`` does, less what a dispatch never needs (a
        result backend, ETA and expiry handling, a parent task, routing rules):
        Celery builds the message and publishes it with its retry policy.
        """
        amqp = self.app.amqp
        for dispatch in dispatches:
            name = task_name(dispatch.type_name)
            queue = self._queue(dispatch)
            request: dict[str, Any] = dispatch.to_request(dispatch.job_id, {}).model_dump(
                mode="json",
                exclude_defaults=True,  # the worker fills them in again
            )
            message = amqp.create_task_message(
                dispatch.run_id,
                name,
                [request],
                {},
                # What Flower and the task events show as the arguments. Celery's
                # default, a saferepr of the whole request, costs ~0.4 ms of the
                # ~1 ms a dispatch takes; the run id names the same request.
                argsrepr=f"[run {dispatch.run_id} attempt {dispatch.attempt}]",
                kwargsrepr="{}",
            )
            # The queue is declared with its first task (so RabbitMQ holds tasks
            # for workers not started yet); after that, kombu's per-message
            # declare check is skipped.
            declare: list[Any] | None = None if queue not in self._declared else []
            amqp.send_task_message(producer, name, message, queue=queue, declare=declare)
            self._declared.add(queue)

    def _queue(self, dispatch: Dispatch) -> str:
        """The queue a dispatch is sent to: its route's, or, for a GPU run, the
        queue of the GPUs that fit it (:mod:`.placement`)."""
        route = dispatch.node.route
        if self.placement is None or not route.gpu or not route.vram_mb:
            return route.queue
        return self.placement.queue(route.queue, route.vram_mb) or route.queue

    def _run_local(self, dispatch: Dispatch) -> None:
        self.on_results([self.runner.run(dispatch)])

    def close(self, wait: bool = True) -> None:
        """Stop the local pools and the outbox (tasks still waiting for the broker are
        sent again by the coordinator that takes the jobs over)."""
        self.in_flight.close()
        self._closing.set()
        self._local.shutdown(wait=wait, cancel_futures=True)
        self._writes.shutdown(wait=wait, cancel_futures=True)
        left = self._outbox.close(0)
        if left:
            log.warning(
                "%d task(s) were not sent: the broker is away; the next driver of "
                "their jobs sends them again",
                left,
            )


def _to_head(producer: Any, queue: str) -> None:
    """Move the task just sent to ``queue`` to its head (Redis; RabbitMQ gives a
    dead consumer's tasks back in place by itself): a run sent again was sent
    before the backlog behind it, and its job waits for it."""
    channel = producer.channel
    if not isinstance(channel, kombu_redis.Channel):
        return
    key = channel._q_for_pri(queue, 0)
    try:
        # kombu pushes on the left and workers pop on the right. Another task
        # pushed in between would be moved instead: harmless, and rare.
        channel.client.lmove(key, key, "LEFT", "RIGHT")
    except redis.ResponseError as exc:  # Redis before 6.2: the task waits its turn
        log.debug("could not move a task sent again to the head of %s: %s", queue, exc)
