"""The coordinator's queues on a kombu broker (RabbitMQ, or any kombu transport).

Durable queues, persistent JSON messages, published through the default
exchange (routing by queue name: no binding lookup per message). The
consumer takes messages without acknowledgements (see :mod:`.channels`).
"""

from __future__ import annotations

import threading
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from orchestrator.broker.channels import BatchHandler, Handler

_EXCHANGE = Exchange("segue.coordinator", type="direct", durable=True)


class KombuTransport:
    """One connection; publishing takes a lock so a worker's threads may share it."""

    def __init__(self, url: str, results: str, control: str) -> None:
        self.url = url
        self.results = Queue(results, _EXCHANGE, routing_key=results, durable=True)
        self.control = Queue(control, _EXCHANGE, routing_key=control, durable=True)
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(self.url, heartbeat=0)
        return self._connection

    def publish(self, queue: str, body: dict[str, Any]) -> None:
        with self._lock:
            connection = self._connect()
            if self._producer is None:
                channel = connection.default_channel
                for declared in (self.results, self.control):
                    declared.bind(channel).declare()  # once per connection, not per message
                self._producer = Producer(channel, exchange=Exchange(""))
            publish = connection.ensure(self._producer, self._producer.publish, max_retries=5)
            publish(body, routing_key=queue, serializer="json", delivery_mode=2)

    def consume(self, on_results: BatchHandler, on_control: Handler) -> None:
        channel = self._connect().channel()
        results = Consumer(
            channel,
            queues=[self.results],
            callbacks=[lambda body, _message: on_results([body])],
            accept=["json"],
            no_ack=True,
        )
        control = Consumer(
            channel,
            queues=[self.control],
            callbacks=[lambda body, _message: on_control(body)],
            accept=["json"],
            no_ack=True,
        )
        results.consume()
        control.consume()

    def drain(self, timeout: float) -> int:
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
        channel = self._connect().default_channel
        return {
            queue.name: queue.bind(channel).queue_declare(passive=False).message_count
            for queue in (self.results, self.control)
        }

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.release()
                self._connection = None
                self._producer = None
