"""RabbitMQ dropping every connection of a job's broker mid-job (what a broker restart or
a failover does to its clients): the coordinator and the worker reconnect, nothing is lost
or recorded twice (issue 13)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.jobs import assert_once_each, await_iterations, full_log, running_sum
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, rabbitmq_vhost

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.fixture
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """A coordinator and a thread worker on a RabbitMQ virtual host of their own."""
    with postgres_database() as database, rabbitmq_vhost() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("rabbit"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster, broker.rsplit("/", 1)[1]
        finally:
            cluster.stop()


def test_rabbitmq_closing_every_connection_twice_mid_job_loses_and_doubles_nothing(
    rabbit: tuple[Cluster, str], tmp_path: Path
) -> None:
    cluster, vhost = rabbit
    items, sink = 30, tmp_path / "sums.jsonl"
    with cluster.client() as client:
        job = client.submit(running_sum(sink, items, nap=0.1))
        for third in (1, 2):
            await_iterations(client, job, items * third // 3)
            subprocess.run(
                ["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "chaos test"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        result = job.wait(timeout=90)
        assert_once_each(cluster, client, job, result, items, sink)
    for name, process in cluster.processes.items():
        assert process.poll() is None, f"{name} exited: {cluster.log(name)}"
    assert "is back after" in full_log(cluster, "coordinator")
    assert "Unrecoverable error" not in full_log(cluster, "thread")
