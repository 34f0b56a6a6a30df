"""The coordinator's inbound queues on the broker.

Workers publish each run's result to ``segue.results``; clients publish a
wake-up to ``segue.control`` after writing a request (a submitted job, a
desired loop state, a cancel) to the store, which stays the source of truth.
Both queues are durable and their messages persistent and JSON.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

RESULTS_QUEUE = "segue.results"
CONTROL_QUEUE = "segue.control"
_EXCHANGE = Exchange("segue.coordinator", type="direct", durable=True)

Handler = Callable[[dict[str, Any]], None]


class Channels:
    """Publishing to, and consuming from, the coordinator's queues.

    One instance per thread (kombu connections are not thread-safe); the
    publishing methods take a lock so a worker's threads may share one.
    """

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        self.results = Queue(
            prefix + RESULTS_QUEUE, _EXCHANGE, routing_key=prefix + RESULTS_QUEUE, durable=True
        )
        self.control = Queue(
            prefix + CONTROL_QUEUE, _EXCHANGE, routing_key=prefix + CONTROL_QUEUE, durable=True
        )
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(self.url, heartbeat=0)
        return self._connection

    # publishing -------------------------------------------------------------------------
    def publish_result(self, body: dict[str, Any]) -> None:
        """Send a run result to the coordinator."""
        self._publish(body, self.results)

    def publish_control(self, body: dict[str, Any]) -> None:
        """Wake the coordinator: something changed in the store."""
        self._publish(body, self.control)

    def _publish(self, body: dict[str, Any], queue: Queue) -> None:
        with self._lock:
            connection = self._connect()
            if self._producer is None:
                channel = connection.default_channel
                for declared in (self.results, self.control):
                    declared.bind(channel).declare()  # once per connection, not per message
                # The default exchange routes by queue name: no binding lookup per message.
                self._producer = Producer(channel, exchange=Exchange(""))
            publish = connection.ensure(self._producer, self._producer.publish, max_retries=5)
            publish(body, routing_key=queue.name, serializer="json", delivery_mode=2)

    # consuming --------------------------------------------------------------------------
    def consume(self, on_result: Handler, on_control: Handler) -> Consumer:
        """A consumer of both queues; call :meth:`drain` to deliver messages to the handlers.

        Messages are acknowledged after their handler returned, so a coordinator
        that dies mid-way gets them again.
        """
        channel = self._connect().channel()

        def handler(kind: Handler) -> Callable[[Any, Any], None]:
            def receive(body: Any, message: Any) -> None:
                kind(body)
                message.ack()

            return receive

        results = Consumer(
            channel,
            queues=[self.results],
            callbacks=[handler(on_result)],
            accept=["json"],
            prefetch_count=2000,
        )
        control = Consumer(
            channel, queues=[self.control], callbacks=[handler(on_control)], accept=["json"]
        )
        results.consume()
        control.consume()
        return results

    def drain(self, timeout: float) -> int:
        """Deliver waiting messages for up to ``timeout`` seconds; returns how many."""
        connection = self._connect()
        count = 0
        try:
            connection.drain_events(timeout=timeout)
            count += 1
            while True:
                connection.drain_events(timeout=0)
                count += 1
        except TimeoutError:
            pass
        return count

    def depth(self) -> dict[str, int]:
        """Messages waiting in the results and control queues."""
        channel = self._connect().default_channel
        return {
            queue.name: queue.bind(channel).queue_declare(passive=False).message_count
            for queue in (self.results, self.control)
        }

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.release()
            self._connection = None
            self._producer = None
