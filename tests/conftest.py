"""Fixtures shared by every test folder: the real services and a real cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import WORKERS, Cluster
from tests.support.services import postgres_database, redis_database


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and three workers (thread, process, gpu) as separate processes,
    on a PostgreSQL database and a Redis broker database of this test run's own."""
    with postgres_database() as database, redis_database() as broker:
        running = Cluster(tmp_path_factory.mktemp("cluster"), broker, database)
        try:
            running.start("coordinator")
            for name in WORKERS:
                running.start(name)
            running.wait_ready("coordinator", *WORKERS)
            yield running
        finally:
            running.stop()
