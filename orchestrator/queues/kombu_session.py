"""One kombu connection of the queue backend, used under one lock.

Thread safety: kombu connections and channels are not thread-safe, and a
message must be acknowledged on the channel that received it. A backend
therefore owns one connection with one working channel (plus, on demand, a
probe channel for passive declarations, whose failures close only the probe)
and serialises every broker call with one re-entrant lock. Receivers poll with
``basic_get`` and sleep outside the lock, so many reader threads can share a
backend; a message received in one thread can be acknowledged in another.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu import Producer, Queue

from orchestrator.broker import kombu_connection
from orchestrator.queues.kombu_names import HEADER_ID

log = logging.getLogger(__name__)

PERSISTENT = 2
"""AMQP delivery mode 2: the broker writes the message to disk."""


class BrokerSession:
    """A kombu connection with a working channel, a probe channel and a lock.

    Attributes:
        lock: Held around every use of the connection.
        generation: Bumped by :meth:`reset`; deliveries of an older generation are void.
    """

    def __init__(self, url: str, transport_options: dict[str, Any], *, virtual: bool) -> None:
        self.lock = threading.RLock()
        self.closed = False
        self._virtual = virtual
        self.generation = 0
        self._connection = kombu_connection(url, transport_options)
        self._channel: Any = None
        self._probe: Any = None
        self._producer: Any = None
        self._bound: dict[str, Any] = {}

    @property
    def virtual(self) -> bool:
        """Whether the transport is kombu's virtual one (Redis) rather than AMQP."""
        return self._virtual

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions after which the connection is reset."""
        conn = self._connection
        return tuple(conn.connection_errors) + tuple(conn.channel_errors)

    def channel(self) -> Any:
        """The working channel: publishes, gets, acknowledgements."""
        if self.closed:
            raise RuntimeError("this queue backend is closed; make a new one")
        if self._channel is None:
            self._channel = self._connection.channel()
            self._producer = Producer(self._channel, auto_declare=False)
            self._bound = {}
        return self._channel

    def probe(self) -> Any:
        """A second channel for passive declarations."""
        if self.closed:
            raise RuntimeError("this queue backend is closed; make a new one")
        if self._probe is None:
            self._probe = self._connection.channel()
        return self._probe

    def drop_probe(self) -> None:
        """Forget the probe channel (the broker closed it after an error)."""
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                probe.close()
            except Exception:  # the broker already closed it: nothing to release
                log.debug("closing a failed probe channel", exc_info=True)

    def put(self, value: Any, message_id: str, exchange: str, routing_key: str) -> None:
        """Publish one JSON message, persistent, tagged with ``message_id``."""
        self.channel()
        self._producer.publish(
            value,
            exchange=exchange,
            routing_key=routing_key,
            serializer="json",
            delivery_mode=PERSISTENT,
            headers={HEADER_ID: message_id},
            retry=False,
        )

    def get(self, name: str) -> Any:
        """The next message of queue ``name``, unacknowledged, or ``None``."""
        queue = self._bound.get(name)
        if queue is None:
            queue = self._bound[name] = Queue(name, durable=True).bind(self.channel())
        return queue.get(no_ack=False, accept=["json"])

    def count(self, name: str) -> int | None:
        """Messages ready in queue ``name``; ``None`` when the broker has no such queue."""
        try:
            return int(self.probe().queue_declare(queue=name, passive=True).message_count)
        except self.errors as exc:
            if "NOT_FOUND" not in str(exc) and "404" not in str(exc):
                raise
            if not self._virtual:  # AMQP closes a channel whose declaration failed
                self.drop_probe()
            return None

    def reset(self) -> None:
        """Throw the connection away after an error; the next call opens a new one."""
        old = self._connection
        self._connection = old.clone()
        self._channel = self._probe = self._producer = None
        self._bound = {}
        self.generation += 1
        try:
            old.collect()
        except Exception:  # releasing a broken connection may fail again; it is gone anyway
            log.debug("collecting a failed connection", exc_info=True)

    def close(self) -> None:
        """Close the channels (Redis restores their unacked messages) and the connection."""
        for channel in (self._probe, self._channel):
            if channel is not None:
                try:
                    channel.close()
                except self.errors:
                    log.warning("closing a queue channel failed", exc_info=True)
        self._channel = self._probe = self._producer = None
        self._bound = {}
        self._connection.release()
        self.closed = True
