"""A worker survives whatever lands on its queue: raw bytes, non-JSON, messages of the
wrong shape, unknown tasks, pickled or YAML-tagged tasks. Each goes to the dead-letter
queue (``segue.dead``) with one log line, the original is acknowledged, nothing of it
runs, and the worker serves the next job (workers/deadletter.py).

Real worker processes (``segue worker``) on Redis, and on RabbitMQ, with default settings.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kombu import Connection, Producer

from orchestrator import Workflow
from orchestrator.celery import DEAD_LETTER_QUEUE
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, rabbitmq_vhost, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
MOVED = "moved a message from queue thread to segue.dead"


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and a thread worker of this module's own, on Redis."""
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("dead-letter"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


class Evil:
    """Unpickling it would run a shell command that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def task(producer: Producer, body: Any, name: str = "segue.node.Constant", **options: Any) -> None:
    """Publish a Celery (protocol 2) task message on the ``thread`` queue."""
    headers = {"task": name, "id": uuid.uuid4().hex, **options.pop("headers", {})}
    options.setdefault("serializer", "json")
    producer.publish(body, exchange="", routing_key="thread", headers=headers, **options)


def dead_letters(broker_url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait for ``count`` dead letters and take them off the queue."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with Connection(broker_url) as connection:
        queue = connection.SimpleQueue(DEAD_LETTER_QUEUE)
        try:
            while len(found) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(found)} of {count} dead letters: {found}"
                try:
                    message = queue.get(timeout=min(1.0, left))
                except queue.Empty:
                    continue
                found.append(message.payload)
                message.ack()
        finally:
            queue.close()
    return found


def queue_declared(connection: Connection, name: str, timeout: float = 60) -> None:
    """Wait until queue ``name`` exists on the broker (a passive declaration passes)."""
    deadline = time.monotonic() + timeout
    while True:
        channel = connection.channel()
        try:
            channel.queue_declare(queue=name, passive=True)
            return
        except connection.channel_errors:
            assert time.monotonic() < deadline, f"no consumer declared queue {name!r}"
            time.sleep(0.2)
        finally:
            try:
                channel.close()
            except connection.connection_errors + connection.channel_errors:
                pass  # the broker closed it after the failed declaration


def still_serving(cluster: Cluster) -> None:
    assert cluster.processes["thread"].poll() is None, cluster.log("thread")
    with cluster.client() as client:
        result = client.submit(Workflow.load(QUICKSTART), {"n": 4}).wait(timeout=60)
    assert result.status == "completed", result.error
    assert result.outputs == {"total": 24, "message": "n squared plus 2n is 24"}


def test_raw_bytes_and_malformed_messages_are_dead_lettered_and_the_worker_serves_on(
    redis_cluster: Cluster,
) -> None:
    raw = redis.Redis.from_url(redis_cluster.broker_url)
    envelope = {
        "body": "not base64!",
        "properties": {
            "delivery_tag": "t1",
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": "thread"},
        },
        "headers": {},
        "content-type": "application/json",
    }
    for junk in (b"not json at all", b"\xff\xfe\x00", b"[1, 2, 3]", b'{"a": 1}'):
        raw.lpush("thread", junk)
    raw.lpush("thread", json.dumps(envelope))
    with Connection(redis_cluster.broker_url) as connection:
        producer = Producer(connection.default_channel)
        task(producer, [[1], {}, {}], name="no.such.task")
        task(producer, [[{"not": "a run request"}], {}, {}])
        task(producer, [[1, 2], {}, {}])
        task(producer, b"{bad", content_type="application/json", content_encoding="utf-8")
        producer.publish({"no": "task header"}, exchange="", routing_key="thread")

    letters = dead_letters(redis_cluster.broker_url, 10)

    reasons = sorted(letter["reason"] for letter in letters)
    assert sum(r == "not JSON" for r in reasons) == 2, reasons
    for expected in (
        "not a message envelope: a JSON list, not an object",
        "not a message envelope: no properties.delivery_tag",
        "not a message envelope: the body is not valid base64",
        "no node type runs task 'no.such.task' here",
        "not a RunRequest (run_id: Field required)",
        "a node task takes one argument, a RunRequest; got 2 + []",
        "undecodable task message (DecodeError",
        "not a Celery task message (no task name)",
    ):
        assert any(r.startswith(expected) for r in reasons), (expected, reasons)
    assert all(letter["queue"] == "thread" for letter in letters)
    assert {"at", "worker", "body", "encoding"} <= set(letters[0])
    assert raw.llen("thread") == 0 and raw.hlen("unacked") == 0
    log = redis_cluster.log("thread")
    assert "Unrecoverable error" not in log
    still_serving(redis_cluster)


def test_a_pickled_or_yaml_tagged_task_is_refused_with_nothing_executed(
    redis_cluster: Cluster, tmp_path: Path
) -> None:
    pickled, tagged = tmp_path / "pickled-ran", tmp_path / "yaml-ran"
    apply = yaml.dump(["ignored"]).replace(
        "- ignored", f"!!python/object/apply:os.system ['touch {tagged}']"
    )
    with Connection(redis_cluster.broker_url) as connection:
        producer = Producer(connection.default_channel)
        task(producer, Evil(pickled), serializer="pickle")
        task(producer, apply, content_type="application/x-yaml", content_encoding="utf-8")

    letters = dead_letters(redis_cluster.broker_url, 2)

    reasons = sorted(letter["reason"] for letter in letters)
    assert all(r.startswith("invalid task message (ContentDisallowed") for r in reasons), reasons
    assert any("pickle" in r for r in reasons) and any("yaml" in r for r in reasons)
    time.sleep(1)  # anything that ran would have left its file by now
    assert not pickled.exists() and not tagged.exists()
    still_serving(redis_cluster)


def test_each_dead_letter_is_one_log_line_without_a_traceback(redis_cluster: Cluster) -> None:
    raw = redis.Redis.from_url(redis_cluster.broker_url)
    before = redis_cluster.log("thread").count(MOVED)
    raw.lpush("thread", b"one more bad message")

    dead_letters(redis_cluster.broker_url, 1)

    log = redis_cluster.log("thread")
    lines = [line for line in log.splitlines() if MOVED in line]
    assert log.count(MOVED) == before + 1
    assert lines[-1].endswith("not JSON (body 'one more bad message')")
    assert "Traceback" not in log


@pytest.mark.timeout(240)
def test_a_worker_on_rabbitmq_dead_letters_what_it_cannot_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with postgres_database() as database, rabbitmq_vhost() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("dead-letter-amqp"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            marker = cluster.root / "pickled-ran"
            with Connection(broker) as connection:
                # RabbitMQ drops what is published to a queue no one declared yet:
                # wait for the worker's consumer to declare its queue.
                queue_declared(connection, "thread")
                producer = Producer(connection.default_channel)
                producer.publish(b"\xff raw bytes", exchange="", routing_key="thread")
                task(producer, Evil(marker), serializer="pickle")
                task(producer, [[1], {}, {}], name="no.such.task")

            letters = dead_letters(broker, 3)

            reasons = sorted(letter["reason"] for letter in letters)
            assert any(r.startswith("invalid task message (ContentDisallowed") for r in reasons)
            assert any(r.startswith("no node type runs task 'no.such.task'") for r in reasons)
            assert not marker.exists()
            still_serving(cluster)
        finally:
            cluster.stop()
