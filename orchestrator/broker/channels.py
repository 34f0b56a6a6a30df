"""The coordinator's inbound queues on the broker.

Workers publish each run's result to ``segue.results``; clients publish a
wake-up to ``segue.control`` after writing a request (a submitted job, a
desired loop state, a cancel) to the store, which stays the source of truth.
Both are durable queues of JSON messages.

On Redis they are plain lists (``LPUSH``, and the coordinator pops results in
batches): a result is a few hundred bytes of JSON sent once per node run, and
kombu's envelope, per-publish client and per-message bookkeeping cost more
than the run itself. On RabbitMQ they are kombu queues.

Neither is acknowledged after handling: a handler only hands a result to the
engine, which journals it later, so an acknowledgement could not make it any
safer. What covers a result lost with its coordinator is the store (the
worker recorded the run before reporting it) and the takeover, which sends
every run in flight again and gets the recorded result back; a lost wake-up
is covered by the coordinator's periodic scan of the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

RESULTS_QUEUE = "segue.results"
CONTROL_QUEUE = "segue.control"

Handler = Callable[[dict[str, Any]], None]
BatchHandler = Callable[[list[dict[str, Any]]], None]


class Transport(Protocol):
    """How the two queues are carried by one kind of broker."""

    def publish(self, queue: str, body: dict[str, Any]) -> None: ...
    def consume(self, on_results: BatchHandler, on_control: Handler) -> None: ...
    def drain(self, timeout: float) -> int: ...
    def depth(self) -> dict[str, int]: ...
    def close(self) -> None: ...


REDIS_SCHEMES = frozenset({"redis", "rediss"})


class Channels:
    """Publishing to, and consuming from, the coordinator's queues.

    Publishing is safe from many threads. Consuming is for one thread: call
    :meth:`consume` once, then :meth:`drain` in a loop.

    Args:
        url: The broker URL (``redis://``/``rediss://``, or any kombu URL such
            as ``amqp://``).
        prefix: Put before both queue names (tests share one broker).
    """

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        self.results = prefix + RESULTS_QUEUE
        self.control = prefix + CONTROL_QUEUE
        self._transport = _transport(url, self.results, self.control)

    def publish_result(self, body: dict[str, Any]) -> None:
        """Send a run result (or a node's progress event) to the coordinator."""
        self._transport.publish(self.results, body)

    def publish_control(self, body: dict[str, Any]) -> None:
        """Wake the coordinator: something changed in the store."""
        self._transport.publish(self.control, body)

    def consume(self, on_results: BatchHandler, on_control: Handler) -> None:
        """Start consuming: results are handed over in batches, in arrival order."""
        self._transport.consume(on_results, on_control)

    def drain(self, timeout: float) -> int:
        """Deliver what is waiting, waiting up to ``timeout`` seconds for the first;
        returns how many messages were delivered."""
        return self._transport.drain(timeout)

    def depth(self) -> dict[str, int]:
        """Messages waiting in the results and control queues, by queue name."""
        return self._transport.depth()

    def close(self) -> None:
        """Close the broker connections."""
        self._transport.close()


def _transport(url: str, results: str, control: str) -> Transport:
    if urlsplit(url).scheme in REDIS_SCHEMES:
        from orchestrator.broker.channels_redis import RedisTransport

        return RedisTransport(url, results, control)
    from orchestrator.broker.channels_kombu import KombuTransport

    return KombuTransport(url, results, control)
