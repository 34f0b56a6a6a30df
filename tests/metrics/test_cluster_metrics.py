"""Metrics scraped from a running cluster, checked against the store after a known job.

The job: a loop of six ticks whose Flaky node fails on two of them (the loop
goes on: ``on_error: continue``) and writes the rest into a queue, read by a
second loop that is paused, so messages wait in the queue. The coordinator's
``/metrics`` must then show what the store holds (iterations, errors, runs,
durations, queue depth, loop states, node health, workers, jobs); a
prefork worker's own ``/metrics`` shows the run it executes.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import Workflow
from orchestrator.health import node_health
from orchestrator.store import Store, open_store
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

METERED = Workflow.loads(
    """
    name: metered
    nodes:
      - {id: ticks, type: Range, config: {stop: 6, interval_s: 0.2}}
      - {id: flaky, type: Flaky, config: {fail_on: [1, 5]}}
      - {id: push, type: QueueWriter, config: {queue: handoff}}
      - {id: pull, type: QueueReader, config: {queue: handoff}}
      - {id: out, type: Output, config: {name: got}}
    edges:
      - {from: ticks.value, to: flaky.value}
      - {from: flaky.value, to: push.value}
      - {from: pull.item, to: out.value}
    loops:
      ticks: {on_error: continue}
    """
)
NAPPING = Workflow.loads(
    """
    name: napping
    nodes:
      - {id: one, type: Constant, config: {value: 1}}
      - {id: nap, type: Sleep, config: {seconds: 4}, queue: process}
      - {id: out, type: Output, config: {name: out}}
    edges:
      - {from: one.value, to: nap.value}
      - {from: nap.value, to: out.value}
    """
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Metered:
    """A cluster whose coordinator and process worker serve /metrics."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.coordinator_port = free_port()
        self.worker_port = free_port()
        self.store: Store = open_store(cluster.database_url, cluster.root / "home")

    def scrape_until(
        self,
        check: Callable[[Samples], bool],
        show: Callable[[Samples], Any],
        timeout: float = 30,
        port: int | None = None,
    ) -> Samples:
        """Scrape until ``check`` passes (the coordinator's snapshot is a few seconds old)."""
        deadline = time.monotonic() + timeout
        while not check(samples := self.scrape(port)):
            assert time.monotonic() < deadline, f"the metrics still show {show(samples)}"
            time.sleep(0.5)
        return samples

    def scrape(self, port: int | None = None) -> Samples:
        url = f"http://127.0.0.1:{port or self.coordinator_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@pytest.fixture
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(
            tmp_path_factory.mktemp("metrics"),
            broker,
            database,
            extra_env={"SEGUE_METRICS_HOST": "127.0.0.1"},
        )
        metered = Metered(cluster)
        try:
            cluster.start("coordinator", "--metrics-port", str(metered.coordinator_port))
            cluster.start("thread")
            cluster.start("process", "--metrics-port", str(metered.worker_port))
            cluster.wait_ready("coordinator", "thread", "process")
            yield metered
        finally:
            cluster.stop()
            metered.store.close()


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def from_store(store: Store, job: str) -> dict[str, float]:
    """What the coordinator's metrics must say about ``job``, read from the store."""
    loops = {loop.name: loop for loop in store.list_loops(job)}
    runs = store.list_runs(job)

    def count(type_name: str, status: str) -> int:
        return sum(1 for r in runs if (r.type_name, r.status) == (type_name, status))

    timed = [
        r
        for r in runs
        if r.type_name == "Flaky" and r.status in ("succeeded", "failed") and r.started_at
    ]
    return {
        "ticks iterations": loops["ticks"].iterations,
        "ticks errors": loops["ticks"].failed_iterations,
        "Flaky succeeded": count("Flaky", "succeeded"),
        "Flaky failed": count("Flaky", "failed"),
        "QueueWriter skipped": count("QueueWriter", "skipped"),
        "Flaky timed": len(timed),
        "handoff depth": count("QueueWriter", "succeeded") - loops["pull"].iterations,
        "pull paused": 1 if loops["pull"].status == "paused" else 0,
        "ticks completed": 1 if loops["ticks"].status == "completed" else 0,
    }


def from_metrics(samples: Samples) -> dict[str, float | None]:
    def runs(type_name: str, status: str) -> float | None:
        return value(
            samples, "segue_node_runs_total", workflow="metered", type=type_name, status=status
        )

    def state(loop: str, name: str) -> float | None:
        return value(samples, "segue_loop_state", workflow="metered", loop=loop, state=name)

    loop = {"workflow": "metered", "loop": "ticks"}
    return {
        "ticks iterations": value(samples, "segue_loop_iterations_total", **loop),
        "ticks errors": value(samples, "segue_loop_iteration_errors_total", **loop),
        "Flaky succeeded": runs("Flaky", "succeeded"),
        "Flaky failed": runs("Flaky", "failed"),
        "QueueWriter skipped": runs("QueueWriter", "skipped"),
        "Flaky timed": value(
            samples, "segue_node_duration_seconds_count", workflow="metered", type="Flaky"
        ),
        "handoff depth": value(samples, "segue_queue_depth", queue="handoff"),
        "pull paused": state("pull", "paused"),
        "ticks completed": state("ticks", "completed"),
    }


def test_a_scrape_after_a_known_job_matches_the_store(metered: Metered) -> None:
    store = metered.store
    with metered.cluster.client() as client:
        job = client.submit(METERED).id
        client.pause_loop(job, "pull")

        def settled() -> bool:
            loops = {loop.name: loop.status for loop in store.list_loops(job)}
            return loops.get("ticks") == "completed" and loops.get("pull") == "paused"

        wait_for(settled, "the ticks loop to complete and the reader to pause")
        # The store settles (the last rows are written in batches) and the metrics'
        # snapshot, at most a few seconds old, catches up: scrape until they agree.
        samples = metered.scrape_until(
            lambda s: from_metrics(s) == from_store(store, job),
            lambda s: f"{from_metrics(s)}, the store {from_store(store, job)}",
        )
        expected = from_store(store, job)
        assert (expected["ticks iterations"], expected["ticks errors"]) == (6, 2)
        assert (expected["Flaky succeeded"], expected["Flaky failed"]) == (4, 2)
        assert expected["handoff depth"] > 0
        health = node_health(client.runs(job))
        assert health["flaky"]["health"] == "failing"  # it failed on the last tick
        for node, report in health.items():
            for name in ("healthy", "retrying", "failing"):
                got = value(
                    samples, "segue_node_health", workflow="metered", node=node, health=name
                )
                assert got == (1 if report["health"] == name else 0), (node, name)
        assert value(samples, "segue_jobs", state="running") == 1
        assert value(samples, "segue_workers", pool="thread", state="alive") == 1
        assert value(samples, "segue_workers", pool="prefork", state="alive") == 1
        assert value(samples, "segue_queue_depth", queue="celery/process") == 0
        assert value(samples, "segue_metrics_source_up", source="broker") == 1
        for (_, labels), _ in samples.items():
            assert all(job not in v for _, v in labels), labels

        # A prefork worker's own series: the run its pool process executes now.
        nap = client.submit(NAPPING)
        wait_for(
            lambda: (r := store.get_run(f"{nap.id}:main:0:nap")) and r.status == "running",
            "the nap to run",
        )
        worker = metered.scrape(metered.worker_port)
        assert value(worker, "segue_worker_runs_in_progress", type="Sleep") == 1
        assert nap.wait(timeout=60).status == "completed"
        # The result is out (and recorded) just before the task returns in the pool process.
        metered.scrape_until(
            lambda s: value(s, "segue_worker_runs_in_progress", type="Sleep") == 0,
            lambda s: value(s, "segue_worker_runs_in_progress", type="Sleep"),
            timeout=10,
            port=metered.worker_port,
        )

        # The reader drains the queue once resumed; the counters only grew.
        client.resume_loop(job, "pull")
        assert client.wait(job, timeout=60).status == "completed"
        after = metered.scrape_until(
            lambda s: value(s, "segue_jobs", state="completed") == 2,
            lambda s: value(s, "segue_jobs", state="completed"),
        )
        assert value(after, "segue_loop_iterations_total", workflow="metered", loop="pull") == 4
        assert value(after, "segue_loop_iterations_total", workflow="metered", loop="ticks") == 6
        assert value(after, "segue_queue_depth", queue="handoff") is None  # no running job uses it
