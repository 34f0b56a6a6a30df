"""Clusters of their own for tests that kill processes or change the broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.services import postgres_database, rabbitmq_vhost, redis_database

FRAGILE = {
    "SEGUE_VISIBILITY_TIMEOUT_S": "4",  # a killed worker's task comes back after 4 s
    "SEGUE_COORDINATOR_LEASE_S": "3",  # a killed coordinator's jobs are free after 3 s
}


@pytest.fixture
def fragile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and a thread worker that tests may kill and restart."""
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("fragile"), broker, database, extra_env=FRAGILE)
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
