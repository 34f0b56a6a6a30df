"""kombu's Redis channel closed after its connection was collected (what Celery does when
the broker drops) must not raise ``AttributeError`` (orchestrator.celery.transport)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue

from orchestrator.celery.app import REDIS_TRANSPORT
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(60)]


def test_a_redis_channel_outliving_its_connection_fails_as_a_connection_error_then_acks(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        tasks = Queue("tasks", Exchange("tasks"), "tasks")
        with Connection(server.url) as producer:
            Producer(producer).publish(
                {"n": 1}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks]
            )
        connection = Connection(server.url, transport=REDIS_TRANSPORT)
        got: list[Message] = []
        Consumer(
            connection.default_channel, [tasks], callbacks=[lambda _, m: got.append(m)]
        ).consume()
        # A second channel with an auto-delete fanout queue, as Celery's remote control has:
        # its close fails on the dead socket and leaves the task channel open.
        control = Queue("control", Exchange("control", type="fanout"), auto_delete=True)
        Consumer(connection.channel(), [control], no_ack=True).consume()
        for _ in range(20):
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.2)
            if got:
                break
        assert len(got) == 1
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.2)  # the task channel waits in BRPOP again

        server.stop()
        connection.collect()  # what Celery does when the connection drops
        connection.close()  # kombu's own channel raised AttributeError here
        with pytest.raises(redis.ConnectionError):
            got[0].ack()  # a late acknowledgement while Redis is away
        server.start()
        got[0].ack()  # and once it is back
        assert redis.Redis(port=server.port).zcard("unacked_index") == 0
    finally:
        server.stop()
