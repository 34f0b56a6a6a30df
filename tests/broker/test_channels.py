"""The coordinator's queues on real brokers: Redis lists and RabbitMQ (kombu)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from orchestrator.broker import Channels
from orchestrator.broker.channels_redis import BATCH, RedisTransport
from tests.support.services import rabbitmq_vhost, redis_database

pytestmark = pytest.mark.services


@pytest.fixture(scope="module", params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with redis_database() if request.param == "redis" else rabbitmq_vhost() as url:
        yield url


class Inbox:
    """What a consumer received: result batches and control messages, in order."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.controls: list[dict[str, Any]] = []

    @property
    def results(self) -> list[dict[str, Any]]:
        return [body for batch in self.batches for body in batch]

    def drain_until(self, channels: Channels, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) + len(self.controls) < count:
            assert time.monotonic() < deadline, f"got {len(self.results)} of {count}"
            channels.drain(timeout=0.2)


@pytest.fixture
def channels(broker_url: str) -> Iterator[tuple[Channels, Channels, Inbox]]:
    """A publisher and a consumer on queues of this test's own."""
    prefix = f"test.{uuid.uuid4().hex[:8]}."
    publisher, consumer = Channels(broker_url, prefix), Channels(broker_url, prefix)
    inbox = Inbox()
    consumer.consume(inbox.batches.append, inbox.controls.append)
    yield publisher, consumer, inbox
    publisher.close()
    consumer.close()


def test_results_arrive_in_the_order_they_were_published(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    publisher, consumer, inbox = channels
    for i in range(50):
        publisher.publish_result({"run_id": f"r{i}", "n": i})
    inbox.drain_until(consumer, 50)
    assert [body["n"] for body in inbox.results] == list(range(50))
    assert inbox.controls == []


def test_control_messages_go_to_the_control_handler(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    publisher, consumer, inbox = channels
    publisher.publish_control({"kind": "submit", "job": "j1"})
    publisher.publish_result({"run_id": "r1"})
    publisher.publish_control({"kind": "cancel", "job": "j1"})
    inbox.drain_until(consumer, 3)
    assert inbox.controls == [{"kind": "submit", "job": "j1"}, {"kind": "cancel", "job": "j1"}]
    assert inbox.results == [{"run_id": "r1"}]


def test_depth_counts_what_waits_in_each_queue(broker_url: str) -> None:
    prefix = f"test.{uuid.uuid4().hex[:8]}."
    publisher, consumer, inbox = Channels(broker_url, prefix), Channels(broker_url, prefix), Inbox()
    assert publisher.depth() == {publisher.results: 0, publisher.control: 0}
    for i in range(3):
        publisher.publish_result({"n": i})
    publisher.publish_control({"kind": "loop"})
    deadline = time.monotonic() + 10
    while (depth := publisher.depth()) != {publisher.results: 3, publisher.control: 1}:
        assert time.monotonic() < deadline, depth
        time.sleep(0.05)
    consumer.consume(inbox.batches.append, inbox.controls.append)  # takes them off the queues
    inbox.drain_until(consumer, 4)
    assert publisher.depth() == {publisher.results: 0, publisher.control: 0}
    publisher.close()
    consumer.close()


def test_a_drain_with_nothing_waiting_returns_after_its_timeout(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    _, consumer, inbox = channels
    start = time.monotonic()
    assert consumer.drain(timeout=0.3) == 0
    assert 0.2 < time.monotonic() - start < 5
    assert inbox.results == [] and inbox.controls == []


def test_many_threads_may_publish_through_one_instance(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    publisher, consumer, inbox = channels

    def publish(thread: int) -> None:
        for i in range(40):
            publisher.publish_result({"thread": thread, "n": i})

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox.drain_until(consumer, 240)
    for t in range(6):  # each thread's messages in its own order
        assert [b["n"] for b in inbox.results if b["thread"] == t] == list(range(40))


# Redis lists ------------------------------------------------------------------------
@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.mark.parametrize("multipop", [True, False], ids=["blmpop", "brpop"])
def test_on_redis_a_backlog_is_taken_in_batches(redis_url: str, multipop: bool) -> None:
    publisher, consumer, inbox = Channels(redis_url), Channels(redis_url), Inbox()
    consumer.consume(inbox.batches.append, inbox.controls.append)
    transport = consumer._transport
    assert isinstance(transport, RedisTransport)
    transport._multipop = multipop  # False: the path for servers older than Redis 7
    total = 2 * BATCH + 7
    for i in range(total):
        publisher.publish_result({"n": i})
    publisher.publish_control({"kind": "submit"})
    calls = 0
    while len(inbox.results) < total or not inbox.controls:
        consumer.drain(timeout=0.5)
        calls += 1
        assert calls < 20
    assert [body["n"] for body in inbox.results] == list(range(total))
    assert max(len(batch) for batch in inbox.batches) >= BATCH
    assert calls <= 5
    publisher.close()
    consumer.close()


def test_on_redis_a_message_that_is_not_a_json_object_is_dropped_with_a_warning(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    consumer, inbox = Channels(redis_url), Inbox()
    consumer.consume(inbox.batches.append, inbox.controls.append)
    raw = redis.Redis.from_url(redis_url)
    raw.lpush(consumer.results, b"not json", b"[1, 2]", b'{"run_id": "ok"}')
    with caplog.at_level(logging.WARNING, logger="segue.broker"):
        inbox.drain_until(consumer, 1)
    assert inbox.results == [{"run_id": "ok"}]
    assert sum("not a JSON object" in r.message for r in caplog.records) == 2
    consumer.close()


def test_on_redis_the_queues_are_plain_lists_of_json(redis_url: str) -> None:
    publisher = Channels(redis_url)
    publisher.publish_result({"run_id": "j:main:0:n", "status": "succeeded"})
    raw = redis.Redis.from_url(redis_url)
    assert raw.lrange("segue.results", 0, -1) == [b'{"run_id":"j:main:0:n","status":"succeeded"}']
    publisher.close()
