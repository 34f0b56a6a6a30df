"""Over every transport, a message on the coordinator's channels that is not a JSON
object - not JSON, not UTF-8, a JSON list - is dropped with one warning, and the
messages after it arrive: the control queue and a results queue alike, read live or
found waiting when a job is followed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from kombu import Connection, Exchange, Producer

from orchestrator.channels import Channels, MemoryBroker
from tests.channels.test_channels import consumer_of
from tests.support.services import rabbitmq_vhost, redis_database

JUNK = (b"not json", b"\xff\xfe\x00", b"[1, 2]")
Inject = Callable[[str, bytes], None]
"""Put raw bytes on a queue (a full name, or the control queue)."""


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.services),
        pytest.param("amqp", marks=pytest.mark.services),
    ]
)
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A broker URL of this test's own and its kind."""
    if request.param == "memory":
        yield f"memory://malformed-{uuid.uuid4().hex[:8]}", "memory"
        return
    with redis_database() if request.param == "redis" else rabbitmq_vhost() as url:
        yield url, request.param


def injector(url: str, kind: str, channels: Channels) -> Inject:
    """How to put raw bytes where a publisher's JSON would go, on this kind of broker."""

    def memory(queue: str, raw: bytes) -> None:
        broker = MemoryBroker.named(url)
        text = raw.decode("utf-8", errors="replace")
        with broker.changed:
            if queue == channels.control:
                for inbox in broker.subscribers.get(queue, ()):
                    inbox.append(text)
                broker.changed.notify_all()
            else:
                broker.append(queue, text)

    def on_redis(queue: str, raw: bytes) -> None:
        redis.Redis.from_url(url).xadd(queue, {"b": raw})

    def amqp(queue: str, raw: bytes) -> None:
        with Connection(url) as connection:
            producer = Producer(connection.default_channel)
            if queue == channels.control:
                fanout = Exchange(queue, type="fanout", durable=True)
                producer.publish(raw, exchange=fanout, routing_key="", declare=[fanout])
            else:
                producer.publish(raw, exchange="", routing_key=queue)

    return {"memory": memory, "redis": on_redis, "amqp": amqp}[kind]


@pytest.fixture
def prefix() -> str:
    return f"test.{uuid.uuid4().hex[:8]}."


def test_junk_on_the_control_queue_is_dropped_and_the_next_wake_up_arrives(
    broker: tuple[str, str], prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, kind = broker
    publisher = Channels(url, prefix)
    consumer, inbox = consumer_of(url, prefix)
    inject = injector(url, kind, consumer)
    with caplog.at_level(logging.WARNING, logger="segue.broker"):
        for junk in JUNK:
            inject(consumer.control, junk)
        publisher.publish_control({"kind": "submit", "job": "j1"})
        inbox.drain_until(consumer, 1)
    assert inbox.controls == [{"kind": "submit", "job": "j1"}]
    assert sum("dropped a message" in r.message for r in caplog.records) == len(JUNK)
    publisher.close()
    consumer.close()


def test_junk_on_a_results_queue_is_dropped_live_and_in_the_backlog(
    broker: tuple[str, str], prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, kind = broker
    publisher = Channels(url, prefix)
    consumer, inbox = consumer_of(url, prefix)
    inject = injector(url, kind, consumer)
    queue = consumer.results_queue("j1")
    consumer.follow("j1")
    with caplog.at_level(logging.WARNING, logger="segue.broker"):
        for junk in JUNK:
            inject(queue, junk)
        publisher.publish_result("j1", {"run_id": "j1:main:0:a"})
        inbox.drain_until(consumer, 1)
        consumer.forget("j1", delete=False)  # a next coordinator finds what was left
        for junk in JUNK:
            inject(queue, junk)
        publisher.publish_result("j1", {"run_id": "j1:main:0:b"})
        successor, _ = consumer_of(url, prefix)
        backlog = successor.follow("j1")
    assert inbox.results("j1") == [{"run_id": "j1:main:0:a"}]
    assert [body for body, _ in backlog][-1] == {"run_id": "j1:main:0:b"}
    assert all(isinstance(body, dict) for body, _ in backlog)
    assert sum("dropped a message" in r.message for r in caplog.records) == 2 * len(JUNK)
    for channels in (publisher, consumer, successor):
        channels.close()
