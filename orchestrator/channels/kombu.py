"""The coordinator's queues on a kombu broker (RabbitMQ, or any kombu transport).

A job's results go to a durable queue of its own, published as persistent
JSON through the default exchange (routing by queue name: no binding lookup
per message; a result for a job whose queue was deleted is dropped). The
coordinator acknowledges a result once it is journaled; what it held
unacknowledged when it died, or when it let go of the job (a lost lease), goes
back to the queue for the next one. Wake-ups
go through a fanout exchange to a private queue of every coordinator.
Publishing is retried per the broker retry policy (:mod:`orchestrator.broker`):
a result or wake-up sent twice is handled once. A consuming connection that
drops is opened again by the next :meth:`KombuTransport.drain`, which consumes
the wake-ups and every followed queue again; what the broker had delivered on
the lost connection comes again (RabbitMQ requeues it), so a result may be
handled twice, never lost.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from functools import partial
from typing import Any

from kombu import Connection, Consumer, Exchange, Message, Producer, Queue
from kombu.exceptions import OperationalError

from orchestrator.broker import kombu_connection, retry_call
from orchestrator.channels.base import Body, ControlHandler, Delivery, ResultsHandler

log = logging.getLogger("segue.broker")
_EXCHANGE = Exchange("segue.coordinator", type="direct", durable=True)


class KombuTransport:
    """A publishing connection (behind a lock: a worker's threads share it) and a
    consuming one, used by the consuming thread only."""

    def __init__(self, url: str, control: str) -> None:
        self.url = url
        self.fanout = Exchange(control, type="fanout", durable=True)
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._consuming: Connection | None = None
        self._consumers: dict[str, Consumer] = {}
        self._arrived: dict[str, list[Delivery]] = {}
        self._held: dict[str, dict[int, Message]] = {}  # queue -> delivered, not yet acked
        self._done: list[tuple[str, list[object]]] = []
        self._done_lock = threading.Lock()
        self._on_results: ResultsHandler | None = None
        self._on_control: ControlHandler | None = None
        self._following: dict[str, str] = {}  # followed queue -> job id
        self._broken = False  # the consuming connection dropped: open it again
        with kombu_connection(url) as probe:  # not connected: only its transport's errors
            self._transient: tuple[type[BaseException], ...] = (
                *probe.recoverable_connection_errors,
                *probe.recoverable_channel_errors,
                OperationalError,
                OSError,
            )

    def transient(self, error: BaseException) -> bool:
        return isinstance(error, self._transient)

    def _publish(self, body: Body, **options: Any) -> None:
        with self._lock:
            if self._connection is None:
                self._connection = kombu_connection(self.url)
            errors = (
                *self._connection.recoverable_connection_errors,
                *self._connection.recoverable_channel_errors,
            )
            retry_call(
                lambda: self._open_producer().publish(
                    body, serializer="json", delivery_mode=2, **options
                ),
                errors,
                self._reconnect,
            )

    def _open_producer(self) -> Producer:
        """The publishing producer, on a connection opened again after an error."""
        if self._connection is None:
            self._connection = kombu_connection(self.url)
        if self._producer is None:
            self._producer = Producer(self._connection.default_channel, exchange=Exchange(""))
        return self._producer

    def _reconnect(self, error: BaseException) -> None:
        # Each retry: the outage itself is logged once, by the channels' outbox.
        log.debug("publishing to the coordinator's queues failed (%s); reconnecting", error)
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                connection.collect()

    def publish_result(self, queue: str, body: Body) -> None:
        self._publish(body, routing_key=queue)

    def publish_control(self, body: Body) -> None:
        self._publish(body, exchange=self.fanout, routing_key="", declare=[self.fanout])

    def consume(self, on_results: ResultsHandler, on_control: ControlHandler) -> None:
        self._on_results, self._on_control = on_results, on_control
        self._open()

    def _open(self) -> None:
        """Open the consuming connection and consume the wake-ups (a private queue bound
        to the fanout exchange)."""
        assert self._on_control is not None
        on_control = self._on_control
        connection = kombu_connection(self.url)
        try:
            mine = Queue(
                f"{self.fanout.name}.{uuid.uuid4().hex[:12]}",
                self.fanout,
                exclusive=True,
                auto_delete=True,
            )
            Consumer(
                connection.default_channel,
                queues=[mine],
                callbacks=[partial(_control, on_control)],
                accept=["json"],
                no_ack=True,
                on_decode_error=partial(_undecodable, "the control queue", False),
            ).consume()
        except BaseException:
            with contextlib.suppress(Exception):  # half open: let it go
                connection.collect()
            raise
        self._consuming = connection

    def _reopen(self) -> None:
        """The consuming connection dropped: open another, consume the wake-ups and the
        followed queues again. Messages held on the lost one come again from the broker."""
        lost, self._consuming = self._consuming, None
        if lost is not None:
            with contextlib.suppress(Exception):  # it is broken: closing it may fail
                lost.collect()
        self._consumers.clear()
        self._held.clear()
        self._open()
        for queue, job_id in list(self._following.items()):
            backlog = self._subscribe(job_id, queue)
            if backlog:
                self._arrived.setdefault(job_id, []).extend(backlog)
        self._broken = False

    def follow(self, job_id: str, queue: str) -> list[Delivery]:
        if self._on_control is None:
            raise RuntimeError("call consume() before follow()")
        if queue in self._following:
            return []
        if self._broken or self._consuming is None:
            self._reopen()
        backlog = self._subscribe(job_id, queue)
        self._following[queue] = job_id
        return backlog

    def _subscribe(self, job_id: str, queue: str) -> list[Delivery]:
        """Declare a results queue, take what waits in it, and consume it."""
        assert self._consuming is not None
        channel = self._consuming.default_channel
        bound = Queue(queue, _EXCHANGE, routing_key=queue, durable=True).bind(channel)
        bound.declare()
        held = self._held.setdefault(queue, {})
        backlog: list[Delivery] = []
        while (message := bound.get(no_ack=False, accept=["json"])) is not None:
            try:
                body = message.payload
            except Exception as exc:  # kombu's decode errors have no common base
                _undecodable(f"job {job_id}", True, message, exc)
                continue
            if not isinstance(body, dict):
                self._arrive(job_id, held, body, message)  # dropped, logged, acknowledged
                continue
            held[message.delivery_tag] = message
            backlog.append((body, message))
        consumer = Consumer(
            channel,
            queues=[bound],
            callbacks=[partial(self._arrive, job_id, held)],
            accept=["json"],
            no_ack=False,
            on_decode_error=partial(_undecodable, f"job {job_id}", True),
        )
        consumer.consume()
        self._consumers[queue] = consumer
        return backlog

    def _arrive(self, job_id: str, held: dict[int, Message], body: Any, message: Message) -> None:
        if not isinstance(body, dict):
            log.warning(
                "dropped a message for job %s that is not a JSON object: %.200r", job_id, body
            )
            message.ack()
            return
        held[message.delivery_tag] = message
        self._arrived.setdefault(job_id, []).append((body, message))

    def forget(self, queue: str, delete: bool) -> None:
        self._following.pop(queue, None)
        if self._broken:  # nothing is held: the broker took back what the lost connection had
            self._consumers.pop(queue, None)
            self._held.pop(queue, None)
            if not delete:
                return
            self._reopen()
        self.release()  # acknowledgements still owed go before the queue does
        consumer = self._consumers.pop(queue, None)
        if consumer is not None:
            consumer.cancel()
        for message in self._held.pop(queue, {}).values():
            if not delete and not message.acknowledged:
                message.reject(requeue=True)  # for the coordinator that drives the job now
        if delete and self._consuming is not None:
            Queue(queue, _EXCHANGE, routing_key=queue, durable=True).bind(
                self._consuming.default_channel
            ).delete()

    def done(self, queue: str, tokens: list[object]) -> None:
        with self._done_lock:
            self._done.append((queue, tokens))

    def drain(self, timeout: float) -> int:
        if self._on_results is None:
            raise RuntimeError("call consume() before drain()")
        if self._broken or self._consuming is None:
            self._reopen()
        assert self._consuming is not None
        connection = self._consuming
        count = 0
        try:
            self.release()
            connection.drain_events(timeout=timeout)
            count += 1
            while True:
                connection.drain_events(timeout=0)
                count += 1
        except TimeoutError:  # socket.timeout: nothing (more) waits
            pass
        except Exception as exc:
            if self.transient(exc):
                self._broken = True
            raise
        arrived, self._arrived = self._arrived, {}
        for job_id, deliveries in arrived.items():
            self._on_results(job_id, deliveries)
        return count

    def release(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        for queue, tokens in done:
            held = self._held.get(queue, {})
            for message in tokens:
                if not isinstance(message, Message) or message.acknowledged or self._broken:
                    continue  # a lost connection's deliveries come again from the broker
                if not _take(held, message):
                    continue  # delivered on a lost connection: the broker delivers it again
                try:
                    message.ack()
                except Exception as exc:  # the broker requeues it: handled twice, not lost
                    if not self.transient(exc):
                        raise
                    self._broken = True
                    log.warning("could not acknowledge a journaled result: %s", exc)

    def depth(self, queues: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        with kombu_connection(self.url) as connection:
            for queue in queues:
                channel = connection.channel()
                try:
                    _, count, _ = channel.queue_declare(queue, passive=True)
                    found[queue] = int(count)
                except Exception:  # no such queue: the job's results were all handled
                    pass
                finally:
                    with contextlib.suppress(Exception):  # closed by the broker already
                        channel.close()
        return found

    def close(self) -> None:
        with self._lock:
            for connection in (self._connection, self._consuming):
                if connection is not None:
                    connection.release()
            self._connection = self._consuming = None
            self._producer = None


def _control(on_control: ControlHandler, body: Any, message: Message) -> None:
    if isinstance(body, dict):
        on_control(body)
    else:
        log.warning(
            "dropped a message from the control queue that is not a JSON object: %.200r", body
        )


def _undecodable(where: str, ack: bool, message: Message, exc: BaseException) -> None:
    """Drop a message that is not JSON (logged once): it cannot be a result or a wake-up.

    ``ack``: the consumer acknowledges (a results queue), so the message is taken
    off the broker; a no-ack consumer (the control queue) has nothing to ack.
    """
    log.warning(
        "dropped a message for %s that is not JSON (%s, content type %s): %.200r",
        where,
        type(exc).__name__,
        message.content_type,
        message.body,
    )
    if ack and not message.acknowledged:
        message.ack()


def _take(held: dict[int, Message], message: Message) -> bool:
    """Take ``message`` out of ``held`` if it is held there (it came on this connection)."""
    tag = message.delivery_tag
    if held.get(tag) is not message:
        return False
    del held[tag]
    return True
