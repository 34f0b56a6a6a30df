"""Run logs and in-flight states on a real cluster (DESIGN 3.16, section 4 States).

What a node logs and prints on a Celery worker - a thread-pool worker and a
prefork (process) worker's children - is kept with its run in the store and
read back by ``Client.logs``; a task no worker has started for a while shows
``queued``, a long one ``running``, in ``runs()`` and the job's events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodes.library import builtin_registry
from orchestrator import Client, WorkflowBuilder
from tests.support.cluster import Cluster
from tests.support.log_nodes import Talker, publish
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    plugins = publish(tmp_path_factory.mktemp("plugins"))
    path = os.pathsep.join([str(plugins), str(ROOT), os.environ.get("PYTHONPATH", "")])
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(
            tmp_path_factory.mktemp("logs"), broker, database, extra_env={"PYTHONPATH": path}
        )
        try:
            for name in ("coordinator", "thread", "process"):
                cluster.start(name)
            cluster.wait_ready("coordinator", "thread", "process")
            yield cluster
        finally:
            cluster.stop()


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_workers_runs_keep_what_they_logged_and_printed(cluster: Cluster, pool: str) -> None:
    b = WorkflowBuilder(f"cluster-logs-{pool}")
    ticks = b.node("ticks", "Range", config={"stop": 2})
    talk = b.node("talk", "Talker")
    b.edge(ticks["value"], talk["value"])
    b.loop("ticks", pool=pool)
    registry = builtin_registry().copy()
    registry.register(Talker)  # the workers load it from the published entry point
    with Client(settings=cluster.settings(), registry=registry) as client:
        job = client.submit(b.build())
        assert job.wait(timeout=60).status == "completed"
        lines = client.logs(job.id, node="talk")
        runs = {r.run_id: r.worker for r in client.runs(job.id) if r.node == "talk"}

    for i in range(2):
        mine = {(line.logger, line.level, line.message) for line in lines if line.iteration == i}
        assert {
            ("segue.node", "INFO", f"context says {i}"),
            ("user.library", "WARNING", f"library warns {i}"),
            ("stdout", "INFO", f"printed {i}"),
            ("stderr", "WARNING", f"to stderr {i}"),
        } == mine, (pool, mine, cluster.log(pool))
    assert {line.run_id for line in lines} == set(runs)
    assert all(worker for worker in runs.values())


def test_runs_show_queued_while_workers_are_busy_then_running(cluster: Cluster) -> None:
    # The process worker runs two tasks at once: of three long naps, one waits.
    b = WorkflowBuilder("cluster-in-flight")
    ticks = b.node("ticks", "Range", config={"stop": 1})
    for i in range(3):
        b.edge(ticks["value"], b.node(f"nap{i}", "Sleep", config={"seconds": 2.5})["value"])
    b.loop("ticks", pool="process")
    seen: dict[str, set[str]] = {}
    with cluster.client() as client:
        job = client.submit(b.build())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for run in client.runs(job.id):
                seen.setdefault(run.node, set()).add(run.status)
            if all("succeeded" in seen.get(f"nap{i}", ()) for i in range(3)):
                break
            time.sleep(0.05)
        assert job.wait(timeout=60).status == "completed"
        events = [(e.node, e.status) for e in client.events(job.id) if e.kind == "run"]

    naps = [f"nap{i}" for i in range(3)]
    for nap in naps:  # what a poll missed, the events say
        seen[nap] |= {status for node, status in events if node == nap}
    assert all({"running", "succeeded"} <= seen[nap] for nap in naps), (seen, events)
    assert any("queued" in seen[nap] for nap in naps), (seen, events)
    for nap in naps:
        assert events.index((nap, "running")) < events.index((nap, "succeeded")), events
    for nap in [n for n in naps if (n, "queued") in events]:
        assert events.index((nap, "queued")) < events.index((nap, "running")), events
