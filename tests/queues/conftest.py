"""Fixtures of the queue backend tests: one ``brokers`` per implementation.

``memory`` is the in-process backend; ``redis`` and ``amqp`` are
:class:`KombuQueueBackend` on Redis database 15 and on RabbitMQ, each test under
a prefix of its own (``segue.test.<hex>``) whose keys, queues and exchanges are
removed afterwards. An unreachable broker skips its cases, or fails them when
``CI`` is set.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from kombu import Connection

from orchestrator.queues import KombuQueueBackend, MemoryQueueBackend, QueueBackend
from orchestrator.queues.kombu_names import QueueNames
from tests.support.services import missing

REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
URLS = {"redis": REDIS_URL, "amqp": AMQP_URL}
QUEUE_NAMES = ("q", "r")
GROUP_NAMES = ("g", "a", "b", "first", "later")
"""The queue and group names tests may use: AMQP teardown deletes exactly these."""

KINDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.services),
    pytest.param("amqp", marks=pytest.mark.services),
]


@functools.cache
def _unreachable(url: str) -> Exception | None:
    """Why ``url`` does not answer, asked once per test session."""
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return exc
    return None


def reachable(kind: str) -> str:
    """The broker URL of ``kind``; skips (or fails under CI) when it does not answer."""
    url = URLS[kind]
    error = _unreachable(url)
    if error is not None:
        missing(f"{kind} at {url}", error)
    return url


@dataclass
class Brokers:
    """Backends of one implementation sharing one prefix, as separate processes would.

    ``make()`` returns a new backend instance on the same broker and prefix (the
    memory implementation has no broker: it returns its one instance).
    """

    kind: str
    prefix: str = field(default_factory=lambda: f"segue.test.{uuid.uuid4().hex[:12]}")
    made: list[KombuQueueBackend] = field(default_factory=list)
    memory: MemoryQueueBackend = field(default_factory=MemoryQueueBackend)

    @property
    def url(self) -> str:
        return URLS[self.kind]

    def make(self, visibility_timeout_s: float = 3600.0) -> QueueBackend:
        if self.kind == "memory":
            return self.memory
        return self.kombu(visibility_timeout_s)

    def kombu(self, visibility_timeout_s: float = 3600.0) -> KombuQueueBackend:
        backend = KombuQueueBackend(self.url, self.prefix, visibility_timeout_s, poll_max_s=0.02)
        self.made.append(backend)
        return backend

    def clean(self) -> None:
        for backend in self.made:
            backend.close()
        if self.kind == "amqp":
            names = QueueNames(self.prefix)
            with Connection(AMQP_URL) as connection:
                channel = connection.channel()
                for queue in QUEUE_NAMES:
                    for group in GROUP_NAMES:
                        channel.queue_delete(names.group_queue(queue, group))
                    channel.queue_delete(names.orphans(queue))
                    channel.exchange_delete(names.orphans(queue))
                    channel.exchange_delete(names.fanout(queue))
                channel.exchange_delete(names.exchange)
        if self.kind == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


def brokers_of(kind: str) -> Iterator[Brokers]:
    """Brokers of ``kind`` for one test, cleaned up afterwards."""
    if kind != "memory":
        reachable(kind)
    brokers = Brokers(kind)
    try:
        yield brokers
    finally:
        brokers.clean()


@pytest.fixture(params=KINDS)
def brokers(request: pytest.FixtureRequest) -> Iterator[Brokers]:
    """Backends of each implementation under a fresh prefix."""
    yield from brokers_of(request.param)


@pytest.fixture(params=[pytest.param(k, marks=pytest.mark.services) for k in URLS])
def kombu_brokers(request: pytest.FixtureRequest) -> Iterator[Brokers]:
    """Kombu backends on each real broker under a fresh prefix."""
    yield from brokers_of(request.param)
