"""Stream channels (DESIGN 3.14): ordered, bounded (a producer ahead of its consumer
waits), closed early by the consumer, dropped with their job - in process and on
Redis; and the failure a deployment without a stream transport gives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.messages import RunRequest
from orchestrator.runner import NodeRunner
from orchestrator.streams.channels import EMBEDDED_BOUND, MemoryStreamHub, StreamGone, StreamHub
from orchestrator.streams.hubs import open_stream_hub
from orchestrator.streams.marker import channel_key, stream_marker
from orchestrator.streams.redis_hub import CLUSTER_BOUND, RedisStreamHub
from tests.support.services import redis_database

pytestmark = pytest.mark.timeout(60)
KEY = channel_key("job1:main:0:tokens", "token", "take")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def hub(request: pytest.FixtureRequest) -> Iterator[tuple[StreamHub, int]]:
    if request.param == "memory":
        yield MemoryStreamHub(), EMBEDDED_BOUND
    else:
        with redis_database() as url:
            yield RedisStreamHub(url), CLUSTER_BOUND


def _fill(writer: Any, count: int, sent: list[int]) -> None:
    for i in range(count):
        if not writer.put(("chunk", i, i)):
            return
        sent.append(i)


def test_chunks_arrive_in_order_and_a_producer_waits_at_the_bound(
    hub: tuple[StreamHub, int],
) -> None:
    streams, bound = hub
    writer, reader = streams.writer(KEY), streams.reader(KEY)
    sent: list[int] = []
    producer = threading.Thread(target=_fill, args=(writer, bound * 3, sent))
    producer.start()
    time.sleep(0.5)
    assert len(sent) == bound  # the consumer read nothing: the producer waits

    received = [reader.get()[2] for _ in range(bound * 3)]
    producer.join(timeout=10)

    assert received == list(range(bound * 3))


def test_a_consumer_that_closes_stops_its_producer(hub: tuple[StreamHub, int]) -> None:
    streams, bound = hub
    writer, reader = streams.writer(KEY), streams.reader(KEY)
    sent: list[int] = []
    producer = threading.Thread(target=_fill, args=(writer, bound * 10, sent))
    producer.start()
    assert reader.get() == ("chunk", 0, 0)

    reader.close()
    producer.join(timeout=10)

    assert not producer.is_alive()
    assert len(sent) <= bound + 2  # it stopped at its first write after the close


def test_the_end_of_a_job_fails_a_reader_still_waiting(hub: tuple[StreamHub, int]) -> None:
    streams, _ = hub
    reader = streams.reader(KEY)
    failed: list[BaseException] = []

    def read() -> None:
        try:
            reader.get()
        except StreamGone as exc:
            failed.append(exc)

    waiting = threading.Thread(target=read)
    waiting.start()
    time.sleep(0.2)
    streams.end_job("job1")
    waiting.join(timeout=5)

    assert failed and "the job ended" in str(failed[0])
    assert not streams.writer(KEY).put(("chunk", 0, "late"))  # a late producer stops at once


def test_async_ends_wait_without_blocking_their_loop() -> None:
    streams = MemoryStreamHub(bound=4)
    writer, reader = streams.writer(KEY), streams.reader(KEY)

    async def both() -> list[Any]:
        async def produce() -> None:
            for i in range(20):
                assert await writer.aput(("chunk", i, i))
            await writer.aput(("end",))

        task = asyncio.ensure_future(produce())
        got = []
        while (message := await reader.aget())[0] == "chunk":
            got.append(message[2])
        await task
        return got

    assert asyncio.run(both()) == list(range(20))


def test_a_broker_without_a_stream_transport_fails_a_live_stream_run_naming_it() -> None:
    hub = open_stream_hub("amqp://guest:guest@127.0.0.1:5672/x")
    runner = NodeRunner(builtin_registry(), MemoryArtifactStore(), streams=hub)
    request = RunRequest(
        run_id="job1:main:0:join",
        job_id="job1",
        loop="main",
        iteration=0,
        node_id="join",
        type_name="Join",
        inputs={"tokens": stream_marker("job1:main:0:tokens", "token", "join")},
    )

    result = runner.run(request)

    assert result.status == "failed" and result.error is not None
    assert "live Stream edges between workers pass through Redis" in result.error.message
    assert "amqp://" in result.error.message and not result.error.retryable


def test_a_consumer_starts_again_when_its_producer_run_starts_again() -> None:
    # A redelivered producer task (its worker died) begins its stream a second
    # time with the same attempt: the consumer reads it again from its start.
    hub = MemoryStreamHub()
    key = channel_key("job1:main:0:tokens", "token", "join")
    writer = hub.writer(key)
    for message in [("begin", 1), ("chunk", 0, "x "), ("begin", 1)]:
        writer.put(message)
    for message in [("chunk", 0, "a "), ("chunk", 1, "b"), ("end",)]:
        writer.put(message)
    events: list[tuple[str, Any]] = []
    runner = NodeRunner(
        builtin_registry(),
        MemoryArtifactStore(),
        streams=hub,
        on_event=lambda run_id, kind, data: events.append((kind, data)),
    )
    request = RunRequest(
        run_id="job1:main:0:join",
        job_id="job1",
        loop="main",
        iteration=0,
        node_id="join",
        type_name="Join",
        inputs={"tokens": stream_marker("job1:main:0:tokens", "token", "join")},
    )

    result = runner.run(request)

    assert result.status == "succeeded" and result.outputs == {"text": "a b"}
    assert events == [("restart", {"port": "tokens"})]
