"""The coordinator's channels, one contract over every transport: in memory, Redis
streams and RabbitMQ (kombu)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from orchestrator.channels import Channels, Delivery
from tests.support.services import rabbitmq_vhost, redis_database

TRANSPORTS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.services),
    pytest.param("amqp", marks=pytest.mark.services),
]


@pytest.fixture(scope="module", params=TRANSPORTS)
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield f"memory://channels-test-{uuid.uuid4().hex[:8]}"
        return
    with redis_database() if request.param == "redis" else rabbitmq_vhost() as url:
        yield url


class Inbox:
    """What a consumer received: result batches by job, and control messages, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Delivery]]] = []
        self.controls: list[dict[str, Any]] = []

    def on_results(self, job_id: str, deliveries: list[Delivery]) -> None:
        self.batches.append((job_id, deliveries))

    def deliveries(self, job_id: str) -> list[Delivery]:
        return [d for job, batch in self.batches if job == job_id for d in batch]

    def results(self, job_id: str) -> list[dict[str, Any]]:
        return [body for body, _ in self.deliveries(job_id)]

    def drain_until(self, channels: Channels, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(len(batch) for _, batch in self.batches) + len(self.controls) < count:
            assert time.monotonic() < deadline, f"got {self.batches} and {self.controls}"
            channels.drain(timeout=0.2)


def consumer_of(url: str, prefix: str) -> tuple[Channels, Inbox]:
    channels, inbox = Channels(url, prefix), Inbox()
    channels.consume(inbox.on_results, inbox.controls.append)
    return channels, inbox


@pytest.fixture
def prefix() -> str:
    return f"test.{uuid.uuid4().hex[:8]}."


@pytest.fixture
def channels(broker_url: str, prefix: str) -> Iterator[tuple[Channels, Channels, Inbox]]:
    """A publisher and a consumer on queues of this test's own."""
    publisher = Channels(broker_url, prefix)
    consumer, inbox = consumer_of(broker_url, prefix)
    yield publisher, consumer, inbox
    publisher.close()
    consumer.close()


def test_a_followed_jobs_results_arrive_in_order_with_the_job_id(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    publisher, consumer, inbox = channels
    assert consumer.follow("j1") == [] and consumer.follow("j2") == []
    for i in range(50):
        publisher.publish_result("j1" if i % 2 else "j2", {"run_id": f"r{i}", "n": i})
    inbox.drain_until(consumer, 50)
    assert [body["n"] for body in inbox.results("j1")] == list(range(1, 50, 2))
    assert [body["n"] for body in inbox.results("j2")] == list(range(0, 50, 2))
    assert inbox.controls == []


def test_results_stay_on_the_broker_until_done_and_a_takeover_gets_the_rest(
    broker_url: str, prefix: str
) -> None:
    publisher = Channels(broker_url, prefix)
    first, inbox = consumer_of(broker_url, prefix)
    first.follow("j1")
    for i in range(5):
        publisher.publish_result("j1", {"n": i})
    inbox.drain_until(first, 5)
    first.done("j1", [token for _, token in inbox.deliveries("j1")[:2]])  # journaled
    first.drain(timeout=0.1)  # carries the release out
    if not broker_url.startswith("amqp"):  # RabbitMQ counts only what is not delivered yet
        assert first.depth(["j1"]) == {first.results_queue("j1"): 3}
    first.close()  # dies: what it held and had not released goes back

    second, later = consumer_of(broker_url, prefix)
    backlog = second.follow("j1")
    assert [body["n"] for body, _ in backlog] == [2, 3, 4]
    publisher.publish_result("j1", {"n": 5})  # and it reads on from there
    later.drain_until(second, 1)
    assert later.results("j1") == [{"n": 5}]
    second.done("j1", [token for _, token in backlog] + [t for _, t in later.deliveries("j1")])
    second.drain(timeout=0.1)
    assert second.depth(["j1"]) == {second.results_queue("j1"): 0}
    publisher.close()
    second.close()


def test_a_job_let_go_of_leaves_what_was_not_done_for_the_next_coordinator(
    broker_url: str, prefix: str
) -> None:
    # A coordinator that lost a job's lease, still alive, forgets it without delete.
    publisher = Channels(broker_url, prefix)
    first, inbox = consumer_of(broker_url, prefix)
    first.follow("j1")
    for i in range(3):
        publisher.publish_result("j1", {"n": i})
    inbox.drain_until(first, 3)
    first.done("j1", [inbox.deliveries("j1")[0][1]])
    first.forget("j1", delete=False)

    second, _ = consumer_of(broker_url, prefix)
    assert [body["n"] for body, _ in second.follow("j1")] == [1, 2]
    for channels in (publisher, first, second):
        channels.close()


def test_a_job_forgotten_with_delete_keeps_nothing(broker_url: str, prefix: str) -> None:
    publisher = Channels(broker_url, prefix)
    consumer, inbox = consumer_of(broker_url, prefix)
    consumer.follow("j1")
    publisher.publish_result("j1", {"n": 1})
    inbox.drain_until(consumer, 1)
    consumer.forget("j1", delete=True)  # the job ended
    publisher.publish_result("j1", {"n": 2})  # a late result goes nowhere
    assert consumer.drain(timeout=0.3) == 0
    assert consumer.depth(["j1"]) in ({}, {consumer.results_queue("j1"): 0})
    if broker_url.startswith("redis"):
        assert not redis.Redis.from_url(broker_url).exists(consumer.results_queue("j1"))
    publisher.close()
    consumer.close()


def test_every_coordinator_gets_every_wake_up_sent_after_it_started(
    broker_url: str, prefix: str
) -> None:
    publisher = Channels(broker_url, prefix)
    publisher.publish_control({"kind": "submit", "job": "before"})
    consumers = [consumer_of(broker_url, prefix) for _ in range(2)]
    publisher.publish_control({"kind": "submit", "job": "j1"})
    publisher.publish_control({"kind": "cancel", "job": "j1"})
    for consumer, inbox in consumers:
        inbox.drain_until(consumer, 2)
        assert consumer.drain(timeout=0.2) == 0
        assert inbox.controls == [{"kind": "submit", "job": "j1"}, {"kind": "cancel", "job": "j1"}]
        consumer.close()
    publisher.close()


def test_a_drain_with_nothing_waiting_returns_after_its_timeout(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    _, consumer, inbox = channels
    consumer.follow("j1")
    start = time.monotonic()
    assert consumer.drain(timeout=0.3) == 0
    assert 0.2 < time.monotonic() - start < 5
    assert inbox.batches == [] and inbox.controls == []


def test_many_threads_may_publish_through_one_instance(
    channels: tuple[Channels, Channels, Inbox],
) -> None:
    publisher, consumer, inbox = channels
    consumer.follow("j1")

    def publish(thread: int) -> None:
        for i in range(40):
            publisher.publish_result("j1", {"thread": thread, "n": i})

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox.drain_until(consumer, 240)
    for t in range(6):  # each thread's messages in its own order
        assert [b["n"] for b in inbox.results("j1") if b["thread"] == t] == list(range(40))


# Redis streams ----------------------------------------------------------------------
@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.mark.services
def test_on_redis_a_backlog_is_read_in_batches(redis_url: str) -> None:
    from orchestrator.channels.redis import BATCH

    publisher = Channels(redis_url)
    consumer, inbox = consumer_of(redis_url, "")
    consumer.follow("j1")
    total = 2 * BATCH + 7
    for i in range(total):
        publisher.publish_result("j1", {"n": i})
    calls = 0
    while len(inbox.results("j1")) < total:
        consumer.drain(timeout=0.5)
        calls += 1
        assert calls < 20
    assert [body["n"] for body in inbox.results("j1")] == list(range(total))
    assert max(len(batch) for _, batch in inbox.batches) == BATCH
    assert calls <= 4
    publisher.close()
    consumer.close()


@pytest.mark.services
def test_on_redis_a_message_that_is_not_a_json_object_is_dropped_with_a_warning(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    consumer, inbox = consumer_of(redis_url, "")
    consumer.follow("j1")
    raw = redis.Redis.from_url(redis_url)
    key = consumer.results_queue("j1")
    for body in (b"not json", b"[1, 2]", b'{"run_id": "ok"}'):
        raw.xadd(key, {"b": body})
    with caplog.at_level(logging.WARNING, logger="segue.broker"):
        inbox.drain_until(consumer, 1)
    assert inbox.results("j1") == [{"run_id": "ok"}]
    assert sum("not a JSON object" in r.message for r in caplog.records) == 2
    assert raw.xlen(key) == 1  # the bad ones are deleted; the good one waits for done()
    consumer.close()


@pytest.mark.services
def test_on_redis_results_are_stream_entries_of_json(redis_url: str) -> None:
    publisher = Channels(redis_url)
    consumer, _ = consumer_of(redis_url, "")
    consumer.follow("job1")
    publisher.publish_result("job1", {"run_id": "job1:main:0:n", "status": "succeeded"})
    raw = redis.Redis.from_url(redis_url)
    [(_, fields)] = raw.xrange("segue.results.job1")
    assert fields == {b"b": b'{"run_id":"job1:main:0:n","status":"succeeded"}'}
    publisher.close()
    consumer.close()


# In memory ----------------------------------------------------------------------------
def test_in_memory_channels_of_different_urls_do_not_meet() -> None:
    publisher = Channels("memory://one")
    consumer, inbox = consumer_of("memory://two", "")
    consumer.follow("j1")
    publisher.publish_result("j1", {"n": 1})
    publisher.publish_control({"kind": "submit", "job": "j1"})
    assert consumer.drain(timeout=0.1) == 0
    assert inbox.batches == [] and inbox.controls == []
    publisher.close()
    consumer.close()


def test_in_memory_a_body_crosses_as_json_and_each_reader_gets_its_own_copy() -> None:
    url = f"memory://copies-{uuid.uuid4().hex[:8]}"
    publisher = Channels(url)
    (first, one), (second, two) = consumer_of(url, ""), consumer_of(url, "")
    first.follow("j1")
    second.follow("j1")
    body: dict[str, Any] = {"pair": (1, 2), "keys": {3: "three"}}
    publisher.publish_result("j1", body)
    body["pair"] = "changed after the publish"
    one.drain_until(first, 1)
    two.drain_until(second, 1)
    assert one.results("j1") == [{"pair": [1, 2], "keys": {"3": "three"}}]
    one.results("j1")[0]["pair"].append(3)
    assert two.results("j1") == [{"pair": [1, 2], "keys": {"3": "three"}}]
    with pytest.raises(TypeError):
        publisher.publish_result("j1", {"value": object()})
    for channels in (publisher, first, second):
        channels.close()
