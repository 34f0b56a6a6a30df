"""Liveness on a real cluster (DESIGN section 3, item 12), default settings.

A second delivery of a run that a live worker is running is refused by the
claim (it never runs beside the first); a worker stopped with SIGTERM (a
rolling update) finishes what it runs and its job goes on without waiting for
any timeout; every process announces itself in the store with what it holds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.celery import make_celery, task_name
from orchestrator.messages import RunRequest
from orchestrator.store import open_store
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("live"), broker, database)
        try:
            for name in ("coordinator", "thread-1", "thread-2"):
                cluster.start(name)
            cluster.wait_ready("coordinator", "thread-1", "thread-2")
            yield cluster
        finally:
            cluster.stop()


def _wait(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_delivery_of_a_run_a_live_worker_runs_is_refused(cluster: Cluster) -> None:
    flow = Workflow.loads(
        """
        name: long
        nodes:
          - {id: one, type: Constant, config: {value: 1}}
          - {id: nap, type: Sleep, config: {seconds: 4}}
          - {id: out, type: Output, config: {name: out}}
        edges:
          - {from: one.value, to: nap.value}
          - {from: nap.value, to: out.value}
        """
    )
    store = open_store(cluster.database_url, cluster.root / "home")
    with cluster.client() as client:
        job = client.submit(flow)
        run_id = f"{job.id}:main:0:nap"
        _wait(lambda: (r := store.get_run(run_id)) is not None and r.status == "running")
        holder = store.get_run(run_id).worker  # type: ignore[union-attr]
        request = RunRequest(
            run_id=run_id,
            job_id=job.id,
            loop="main",
            iteration=0,
            node_id="nap",
            type_name="Sleep",
            config={"seconds": 4},
            inputs={"value": 1},
            resent=True,
        )
        app = make_celery(cluster.settings())
        app.send_task(
            task_name("Sleep"),
            args=[request.model_dump(mode="json")],
            task_id=run_id,
            queue="thread",
        )
        result = job.wait(timeout=60)
    store.close()

    assert (result.status, result.outputs) == ("completed", {"out": 1})
    logs = cluster.log("thread-1") + cluster.log("thread-2")
    assert logs.count(f"Task segue.node.Sleep[{run_id}] received") == 2
    assert f"skipped: live worker {holder} runs it" in logs
    assert logs.count(f"Task segue.node.Sleep[{run_id}] succeeded in") == 2  # one ran, one skipped
    assert "'succeeded'" in logs


def test_every_process_announces_itself_with_what_it_holds(cluster: Cluster) -> None:
    store = open_store(cluster.database_url, cluster.root / "home")
    try:
        processes = store.list_processes()
    finally:
        store.close()
    by_pid = {p.pid: p for p in processes}
    coordinator = by_pid[cluster.processes["coordinator"].pid]
    worker = by_pid[cluster.processes["thread-1"].pid]
    assert (coordinator.kind, coordinator.state) == ("coordinator", "alive")
    assert (worker.kind, worker.state) == ("worker", "alive")
    assert set(worker.queues) == {"thread", "asyncio", "highmem"}
    assert worker.info["concurrency"] == 8
    assert time.time() - worker.beat_at < 5


def test_a_worker_stopped_with_sigterm_finishes_its_runs_and_the_job_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    sink = tmp_path / "lines.jsonl"
    flow = Workflow.loads(
        f"""
        name: rolling
        nodes:
          - {{id: ticks, type: Range, config: {{stop: 40}}}}
          - {{id: nap, type: Sleep, config: {{seconds: 1}}, blocking: false}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}, blocking: false}}
        edges:
          - {{from: ticks.value, to: nap.value}}
          - {{from: nap.value, to: log.value}}
        """
    )
    store = open_store(cluster.database_url, cluster.root / "home")
    with cluster.client() as client:
        job = client.submit(flow)
        _wait(lambda: sum(r.status == "succeeded" for r in store.list_runs(job.id)) >= 10)
        stopped_at = time.monotonic()
        cluster.kill("thread-1", signal.SIGTERM)  # warm: waits for its runs
        result = job.wait(timeout=60)
        took = time.monotonic() - stopped_at
        runs = client.runs(job.id)
        gone = [p for p in store.list_processes() if p.pid == cluster.processes["thread-1"].pid]
    store.close()

    assert cluster.processes["thread-1"].returncode == 0
    assert result.status == "completed", result.error
    assert took < 15, f"the job waited {took:.1f} s: it should not wait for liveness"
    assert len(runs) == len({r.run_id for r in runs}) == 40 * 3
    lines = sink.read_text().splitlines()
    assert len(lines) == 40
    assert [p.state for p in gone] == ["stopped"]
