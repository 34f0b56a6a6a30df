"""Exit codes tell a supervisor the truth (issue 13): a worker or coordinator stopped on a
broker error it cannot ride out exits non-zero, one asked to stop exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.chaos.jobs import full_log
from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]


def test_a_worker_and_a_coordinator_that_their_broker_refuses_exit_non_zero(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # Redis databases are numbered: no waiting makes "x" one, so both give up at once.
    refused = f"redis://127.0.0.1:{redis_server.port}/x"
    cluster = Cluster(tmp_path, refused, f"sqlite:///{tmp_path / 'segue.db'}")
    cluster.start("coordinator")
    cluster.start("thread")
    try:
        codes = {name: process.wait(timeout=60) for name, process in cluster.processes.items()}
    finally:
        cluster.stop()
    assert codes["thread"] != 0, cluster.log("thread")
    assert codes["coordinator"] != 0, cluster.log("coordinator")
    assert "refused the coordinator" in full_log(cluster, "coordinator")
    assert "check SEGUE_BROKER_URL" in full_log(cluster, "coordinator")


def test_a_worker_asked_to_stop_exits_zero(tmp_path: Path, redis_server: RedisServer) -> None:
    cluster = Cluster(tmp_path, redis_server.url, f"sqlite:///{tmp_path / 'segue.db'}")
    cluster.start("thread")
    try:
        cluster.wait_ready("thread")
        cluster.processes["thread"].send_signal(signal.SIGTERM)
        assert cluster.processes["thread"].wait(timeout=30) == 0, cluster.log("thread")
    finally:
        cluster.stop()
