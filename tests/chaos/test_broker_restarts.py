"""A Redis broker restarted or killed mid-job: no process exits, nothing is lost or
recorded twice (issue 13; DESIGN sections 3, identity and exactly-once recording, and 10).

The broker is a redis-server of the test's own with AOF, stopped with SIGTERM
(it writes its AOF and exits) or SIGKILL (a crash) while a job runs; the
coordinator and the worker ride it out with their default settings.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from orchestrator.heartbeat import age
from tests.chaos.jobs import assert_once_each, await_iterations, full_log, running_sum
from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]
PROBE_MAX_AGE_S = 30.0
"""How old a heartbeat the services' liveness probe accepts (scripts/healthcheck.py)."""


def _still_running(cluster: Cluster) -> None:
    for name, process in cluster.processes.items():
        assert process.poll() is None, (
            f"{name} exited with {process.returncode}: {cluster.log(name)}"
        )
    worker = full_log(cluster, "thread")
    assert "Unrecoverable error" not in worker and "AttributeError" not in worker, worker


def test_redis_restarted_at_a_quarter_a_half_and_three_quarters_of_a_job_loses_and_doubles_nothing(
    chaos_cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    items, sink = 24, tmp_path / "sums.jsonl"
    with chaos_cluster.client() as client:
        job = client.submit(running_sum(sink, items, nap=0.1))
        for quarter in (1, 2, 3):
            await_iterations(client, job, items * quarter // 4)
            redis_server.restart(down_s=0.2)
        result = job.wait(timeout=90)
        assert_once_each(chaos_cluster, client, job, result, items, sink)
    _still_running(chaos_cluster)


def test_redis_killed_mid_job_and_back_after_12_s_from_its_aof_loses_and_doubles_nothing(
    chaos_cluster: Cluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    items, sink = 16, tmp_path / "sums.jsonl"
    with chaos_cluster.client() as client:
        job = client.submit(running_sum(sink, items, nap=0.1))
        await_iterations(client, job, items // 2)
        redis_server.stop(signal.SIGKILL)
        beats = []
        for _ in range(60):  # longer than a client's own reconnect retries: the loops see it
            time.sleep(0.2)
            beats.append(age(chaos_cluster.heartbeat("coordinator")) or 99.0)
        redis_server.start()
        back = time.monotonic()
        result = job.wait(timeout=90)
        recovered_s = time.monotonic() - back
        assert_once_each(chaos_cluster, client, job, result, items, sink)
    _still_running(chaos_cluster)
    coordinator = full_log(chaos_cluster, "coordinator")
    assert "Traceback" not in coordinator, coordinator
    assert "is back after" in coordinator, coordinator
    assert max(beats) < PROBE_MAX_AGE_S  # waiting for its broker, it stays live to its probe
    print(f"job finished {recovered_s:.1f} s after Redis came back")
