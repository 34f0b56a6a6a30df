"""Chaos: workers SIGKILLed mid-job (DESIGN section 3, item 12), default settings.

A worker's whole process group is killed while it holds runs of a job - as
Kubernetes does on an OOM kill or a node loss - and a replacement starts. The
held runs come back within ``worker_timeout_s`` + 5 s of the kill (liveness,
not the broker's hour-long visibility timeout), nothing is lost, nothing is
recorded twice, and the sink holds each run's line exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.settings import Settings
from orchestrator.store import open_store
from tests.chaos.storm import fanout_flow, loop_flow, settle, sink_lines, storm
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]
WORKERS = ["thread-1", "thread-2", "thread-3"]
BOUND_S = Settings().worker_timeout_s + 5


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and three thread workers, with the settings a user gets."""
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("storm"), broker, database)
        try:
            for name in ["coordinator", *WORKERS]:
                cluster.start(name)
            cluster.wait_ready("coordinator", *WORKERS)
            yield cluster
        finally:
            cluster.stop()


def test_a_loop_survives_workers_killed_while_they_hold_its_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    items, sink = 12, tmp_path / "loop.jsonl"
    store = open_store(cluster.database_url, cluster.root / "home")
    with cluster.client() as client:
        job = client.submit(loop_flow(sink, items, nap=1.0))
        kills = storm(cluster, client, store, job.id, WORKERS, kills=3, every_s=2.0)
        result = job.wait(timeout=240)
        runs = client.runs(job.id)
    settle(store, kills, job.id)
    store.close()

    print(f"loop: resumed {kills.resume_times()} s after each kill")
    assert result.status == "completed", result.error
    assert result.outputs == {"values": list(range(items))}
    assert len(kills.kills) == 3
    assert len(kills.resume_times()) == 3
    assert max(kills.resume_times()) <= BOUND_S, kills
    assert len(runs) == len({r.run_id for r in runs}) == items * 4
    assert {r.status for r in runs} == {"succeeded"}
    lines = sink_lines(sink)
    assert sorted(lines) == sorted(f"{job.id}:ticks:{i}:log" for i in range(items))


def test_a_fan_out_survives_workers_killed_while_they_hold_many_runs(
    cluster: Cluster, tmp_path: Path
) -> None:
    items, sink = 300, tmp_path / "fanout.jsonl"
    store = open_store(cluster.database_url, cluster.root / "home")
    with cluster.client() as client:
        job = client.submit(fanout_flow(sink, items, nap=0.5))
        kills = storm(cluster, client, store, job.id, WORKERS, kills=2, every_s=1.0)
        result = job.wait(timeout=240)
        runs = client.runs(job.id)
    settle(store, kills, job.id)
    store.close()

    assert result.status == "completed", result.error
    assert len(kills.kills) == 2
    assert max(kills.resume_times()) <= BOUND_S, kills
    assert len(runs) == len({r.run_id for r in runs}) == items * 3
    assert {r.status for r in runs} == {"succeeded"}
    lines = sink_lines(sink)
    assert sorted(lines) == sorted(f"{job.id}:ticks:{i}:log" for i in range(items))
