"""Queue depths read from a real broker (Redis, RabbitMQ): Celery task queues no
worker serves, a queue node's queue per reader group, and results waiting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Exchange, Queue

from orchestrator.broker import kombu_connection
from orchestrator.celery import make_celery, task_name
from orchestrator.channels import Channels
from orchestrator.depths import BrokerDepths, TaskQueueCounter, task_queue_names
from orchestrator.queues import KombuQueueBackend
from orchestrator.settings import Settings
from orchestrator.store import ProcessRecord
from tests.support.services import rabbitmq_vhost, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    opener = redis_database if request.param == "redis" else rabbitmq_vhost
    with opener() as url:
        yield url


def test_tasks_waiting_in_a_celery_queue_are_counted_and_an_unused_queue_is_zero(
    broker: str,
) -> None:
    queue = f"q{uuid.uuid4().hex[:8]}"
    app = make_celery(Settings(broker_url=broker))
    for n in range(3):
        app.send_task(task_name("Constant"), args=[{"n": n}], queue=queue)
    app.send_task(task_name("Constant"), args=[{}], queue=queue, priority=9)
    depths = BrokerDepths.open(broker, visibility_timeout_s=60)
    try:
        assert depths.task_queues([queue, "never-used"]) == {queue: 4, "never-used": 0}
    finally:
        depths.close()
        app.close()


def test_a_queue_nodes_depth_is_read_per_group_and_results_per_job(broker: str) -> None:
    writer = KombuQueueBackend(broker, visibility_timeout_s=60)
    channels = Channels(broker)
    depths = BrokerDepths.open(broker, visibility_timeout_s=60)
    try:
        writer.subscribe("job1:handoff", "fast")
        writer.subscribe("job1:handoff", "slow")
        for n in range(3):
            writer.publish("job1:handoff", n, f"m{n}")
        message = writer.receive("job1:handoff", "fast", timeout_s=5)
        assert message is not None
        writer.ack("job1:handoff", "fast", message.id)
        _results_queue_exists(broker, channels)
        channels.publish_result("job1", {"run_id": "job1:main:0:a"})

        assert depths.node_queue("job1:handoff", "slow") == 3
        assert depths.node_queue("job1:handoff", "fast") == 2
        assert depths.results(["job1"]) == {"segue.results.job1": 1}
    finally:
        depths.close()
        channels.close()
        writer.close()


def _results_queue_exists(broker: str, channels: Channels) -> None:
    """As it does once a coordinator follows the job (without a consumer taking results)."""
    if broker.startswith("redis"):
        channels.follow("job1")  # makes the stream
        return
    with kombu_connection(broker) as connection:
        name = channels.results_queue("job1")
        Queue(name, Exchange(""), routing_key=name, durable=True).bind(
            connection.channel()
        ).declare()


def test_the_task_queues_measured_are_the_pools_those_workers_serve_and_routes() -> None:
    worker = ProcessRecord("w", "worker", "h", 1, 1.0, 1.0, queues=("thread", "highmem"))
    child = ProcessRecord("c", "worker", "h", 2, 1.0, 1.0)
    coordinator = ProcessRecord("k", "coordinator", "h", 3, 1.0, 1.0, queues=("odd",))

    assert task_queue_names([worker, child, coordinator], "fast") == [
        "asyncio",
        "fast",
        "gpu",
        "highmem",
        "process",
        "thread",
    ]


def test_the_ids_of_tasks_waiting_are_read_on_redis_and_unknown_on_rabbitmq(
    broker: str,
) -> None:
    queue = f"q{uuid.uuid4().hex[:8]}"
    app = make_celery(Settings(broker_url=broker))
    for n in range(3):
        app.send_task(task_name("Constant"), args=[{}], queue=queue, task_id=f"j:main:0:n{n}")
    app.send_task(task_name("Constant"), args=[{}], queue=queue, task_id="j:main:0:p", priority=9)
    counter = TaskQueueCounter(broker)
    try:
        waiting = counter.waiting(queue)
        if broker.startswith("redis"):
            assert waiting == {"j:main:0:n0", "j:main:0:n1", "j:main:0:n2", "j:main:0:p"}
            assert counter.waiting("never-used") == set()
        else:
            assert waiting is None
    finally:
        counter.close()
        app.close()
