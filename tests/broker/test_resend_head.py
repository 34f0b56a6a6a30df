"""A run sent again goes to the head of its Redis queue, not behind the backlog.

It was sent before the tasks queued behind it and its job waits for it (a dead
worker took it: DESIGN 3.12). Real Redis, Celery's own producer.
"""

from __future__ import annotations

import json

import pytest
import redis

from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.runner import NodeRunner
from orchestrator.settings import Settings
from tests.broker.test_outage import _dispatches
from tests.support.services import redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_a_task_sent_again_is_the_next_one_a_worker_takes() -> None:
    with redis_database() as url:
        app = make_celery(Settings(broker_url=url))
        runner = NodeRunner(builtin_registry(), MemoryArtifactStore())
        executor = CeleryExecutor(app, runner, lambda _: None)
        first, second, third = _dispatches()
        try:
            executor.submit([first, second, third])
            executor.submit([second._replace(resent=True)])
        finally:
            executor.close()
            app.close()
        queue = first.node.route.queue
        raw = redis.Redis.from_url(url).lrange(queue, 0, -1)
        # kombu pushes on the left; workers pop on the right.
        order = [json.loads(m)["headers"]["id"] for m in reversed(raw)]
        assert order == [second.run_id, first.run_id, second.run_id, third.run_id]
