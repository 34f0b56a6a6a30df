"""Clusters of their own for tests that kill processes or change the broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.services import postgres_database, rabbitmq_vhost, redis_database


@pytest.fixture
def fragile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and a thread worker that tests may kill and restart, with the
    settings a user gets (liveness, not tuned timeouts, brings runs back)."""
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("fragile"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose broker is RabbitMQ (a virtual host of its own)."""
    with postgres_database() as database, rabbitmq_vhost() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("rabbit"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()
