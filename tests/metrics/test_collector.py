"""The coordinator's metrics (DESIGN section 6) over the memory store: exact values."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from nodes.library import default_registry
from orchestrator.channels import Channels
from orchestrator.depths import BrokerDepths
from orchestrator.health import node_health
from orchestrator.metrics import DURATION_BUCKETS, SegueCollector
from orchestrator.queues import MemoryQueueBackend
from orchestrator.reads import StoreReader
from orchestrator.store import JobRecord, LoopRecord, MemoryStore, ProcessRecord, RunRecord

NOW = 10_000.0
HANDOFF: dict[str, Any] = yaml.safe_load(
    """
    name: handoff
    nodes:
      - {id: ticks, type: Range, config: {stop: 3}}
      - {id: flaky, type: Flaky, config: {fail_on: [2]}}
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


def a_run(job: str, iteration: int, node: str, status: str, **fields: Any) -> RunRecord:
    return RunRecord(
        run_id=f"{job}:ticks:{iteration}:{node}",
        job_id=job,
        loop="ticks",
        iteration=iteration,
        node_id=node,
        type_name={"flaky": "Flaky", "push": "QueueWriter"}.get(node, node),
        status=status,
        **fields,
    )


def a_worker(name: str, beat_at: float = NOW - 1, **fields: Any) -> ProcessRecord:
    fields.setdefault("info", {"pool": "thread"})
    return ProcessRecord(
        name=name, kind="worker", host="elsewhere", pid=7, started_at=1.0, beat_at=beat_at, **fields
    )


class Cluster:
    """A memory store with two jobs of the workflow ``handoff`` (one running, one
    completed), workers, and memory queues and results."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.running, self.done = "jrun" + uuid.uuid4().hex[:6], "jdone" + uuid.uuid4().hex[:6]
        for job, status in ((self.running, "running"), (self.done, "completed")):
            self.store.create_job(
                JobRecord(id=job, workflow="handoff", status=status, spec=HANDOFF)
            )
        self.store.create_job(JobRecord(id="jpending", workflow="handoff", status="pending"))
        self.store.save_loops(
            [
                LoopRecord(self.running, "main", "completed", iterations=1),
                LoopRecord(self.running, "ticks", "completed", iterations=3, failed_iterations=1),
                LoopRecord(self.running, "pull", "paused"),
                LoopRecord(self.done, "main", "completed", iterations=1),
                LoopRecord(self.done, "ticks", "completed", iterations=3, failed_iterations=1),
                LoopRecord(self.done, "pull", "completed", iterations=2),
            ]
        )
        timed = {"started_at": 100.0}
        for job in (self.running, self.done):
            self.store.record_runs(
                [
                    a_run(job, 0, "flaky", "succeeded", finished_at=100.2, **timed),
                    a_run(job, 1, "flaky", "succeeded", finished_at=101.0, **timed),
                    a_run(job, 2, "flaky", "failed", finished_at=103.0, **timed),
                    a_run(job, 0, "push", "succeeded", finished_at=100.3, **timed),
                    a_run(job, 1, "push", "succeeded", finished_at=101.1, **timed),
                    a_run(job, 2, "push", "skipped", finished_at=103.0),
                ]
            )
        self.store.record_runs([a_run(self.running, 3, "push", "running", **timed)])
        for process in (
            a_worker("alive"),
            a_worker("silent", beat_at=NOW - 60),
            a_worker("stopped", state="stopped"),
            a_worker("child", info={"child": True}),
            a_worker("forked", info={"pool": "prefork"}),
            ProcessRecord("coord", "coordinator", "h", 1, started_at=1.0, beat_at=NOW),
        ):
            self.store.announce(process)
        self.queues = MemoryQueueBackend()
        key = f"{self.running}:handoff"
        self.queues.subscribe(key, "pull")
        for n in range(2):
            self.queues.publish(key, n, f"m{n}")
        self.channels = Channels(f"memory://metrics-{uuid.uuid4().hex}")
        self.channels.follow(self.running)  # as its coordinator does
        self.channels.publish_result(self.running, {"run_id": "x"})
        self.tasks = {"thread": 4, "highmem": 1}
        self.depths = BrokerDepths(self.queues, self.channels, lambda q: self.tasks.get(q, 0))

    def collector(self, **options: Any) -> SegueCollector:
        options.setdefault("clock", lambda: NOW)
        options.setdefault("worker_timeout_s", 15.0)
        return SegueCollector(self.store, default_registry(), self.depths, **options)


def scrape(collector: SegueCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_loop_counters_sum_every_job_of_the_workflow(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())

    assert value(metrics, "segue_loop_iterations_total", workflow="handoff", loop="ticks") == 6
    assert (
        value(metrics, "segue_loop_iteration_errors_total", workflow="handoff", loop="ticks") == 2
    )
    assert value(metrics, "segue_loop_iterations_total", workflow="handoff", loop="pull") == 2


def test_loop_states_count_loops_and_list_every_state(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())

    def state(loop: str, name: str) -> float | None:
        return value(metrics, "segue_loop_state", workflow="handoff", loop=loop, state=name)

    assert (state("pull", "paused"), state("pull", "completed"), state("pull", "running")) == (
        1,
        1,
        0,
    )
    assert state("ticks", "completed") == 2
    assert state("ticks", "cancelled") == 0


def test_node_runs_count_how_finished_runs_ended(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())

    def runs(type_name: str, status: str) -> float | None:
        return value(
            metrics, "segue_node_runs_total", workflow="handoff", type=type_name, status=status
        )

    assert (runs("Flaky", "succeeded"), runs("Flaky", "failed"), runs("Flaky", "skipped")) == (
        4,
        2,
        0,
    )
    assert (runs("QueueWriter", "succeeded"), runs("QueueWriter", "skipped")) == (4, 2)
    assert runs("QueueWriter", "running") is None  # not a way to end


def test_durations_are_a_histogram_of_runs_that_succeeded_or_failed(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())
    labels = {"workflow": "handoff", "type": "Flaky"}

    def bucket(le: str) -> float | None:
        return value(metrics, "segue_node_duration_seconds_bucket", le=le, **labels)

    assert (bucket("0.1"), bucket("0.25"), bucket("1.0"), bucket("2.5"), bucket("5.0")) == (
        0,
        2,
        4,
        4,
        6,
    )
    assert bucket("+Inf") == value(metrics, "segue_node_duration_seconds_count", **labels) == 6
    total = value(metrics, "segue_node_duration_seconds_sum", **labels)
    assert total == pytest.approx(2 * (0.2 + 1.0 + 3.0))
    assert len(DURATION_BUCKETS) + 1 == sum(
        1
        for m in metrics.collect()
        for s in m.samples
        if s.name.endswith("_bucket") and s.labels["type"] == "Flaky"
    )


def test_node_health_counts_running_jobs_with_the_one_health_function(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())
    expected = node_health(StoreReader(cluster.store).runs(cluster.running))

    assert expected["flaky"]["health"] == "failing"
    for node, report in expected.items():
        for health in ("healthy", "retrying", "failing"):
            got = value(metrics, "segue_node_health", workflow="handoff", node=node, health=health)
            assert got == (1 if report["health"] == health else 0), (node, health)


def test_workers_are_counted_by_pool_and_liveness_without_prefork_children(
    cluster: Cluster,
) -> None:
    metrics = scrape(cluster.collector())

    def workers(pool: str, state: str) -> float | None:
        return value(metrics, "segue_workers", pool=pool, state=state)

    assert (workers("thread", "alive"), workers("thread", "dead")) == (1, 1)
    assert (workers("thread", "stopped"), workers("prefork", "alive")) == (1, 1)
    assert workers("prefork", "dead") == 0
    assert (
        sum(s.value for m in metrics.collect() if m.name == "segue_workers" for s in m.samples) == 4
    )


def test_jobs_are_counted_in_every_state(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())

    assert [value(metrics, "segue_jobs", state=s) for s in ("pending", "running", "completed")] == [
        1,
        1,
        1,
    ]
    assert value(metrics, "segue_jobs", state="failed") == 0


def test_queue_depths_name_queue_nodes_celery_queues_and_results(cluster: Cluster) -> None:
    metrics = scrape(cluster.collector())

    assert value(metrics, "segue_queue_depth", queue="handoff") == 2
    assert value(metrics, "segue_queue_depth", queue="celery/thread") == 4
    assert value(metrics, "segue_queue_depth", queue="celery/highmem") is None  # nobody uses it
    assert value(metrics, "segue_queue_depth", queue="celery/gpu") == 0
    assert value(metrics, "segue_queue_depth", queue="segue/results") == 1

    cluster.store.announce(a_worker("himem", queues=("highmem",)))
    again = scrape(cluster.collector())
    assert value(again, "segue_queue_depth", queue="celery/highmem") == 1


def test_no_label_carries_a_job_or_run_id(cluster: Cluster) -> None:
    text = generate_latest(scrape(cluster.collector())).decode()

    assert "segue_loop_iterations_total" in text
    for job in (cluster.running, cluster.done, "jpending"):
        assert job not in text


def test_two_replicas_and_a_restarted_coordinator_read_the_same_counters(cluster: Cluster) -> None:
    first = generate_latest(scrape(cluster.collector())).decode()
    second = generate_latest(scrape(cluster.collector())).decode()

    assert first == second


def test_a_snapshot_answers_scrapes_until_it_is_max_age_old(cluster: Cluster) -> None:
    reads: list[int] = []
    tallies = cluster.store.tallies

    def counted(bounds: Any) -> Any:
        reads.append(1)
        return tallies(bounds)

    cluster.store.tallies = counted  # type: ignore[method-assign]
    clock = [0.0]
    collector = cluster.collector(max_age_s=5.0, monotonic=lambda: clock[0])
    metrics = scrape(collector)
    for _ in range(10):
        generate_latest(metrics)
    assert len(reads) == 1

    cluster.store.record_runs([a_run(cluster.running, 3, "push", "succeeded", finished_at=104.0)])
    assert (
        value(
            metrics,
            "segue_node_runs_total",
            workflow="handoff",
            type="QueueWriter",
            status="succeeded",
        )
        == 4
    )
    clock[0] = 5.0
    assert (
        value(
            metrics,
            "segue_node_runs_total",
            workflow="handoff",
            type="QueueWriter",
            status="succeeded",
        )
        == 5
    )
    assert len(reads) == 2


def test_an_unreadable_store_is_reported_and_logged_once_not_raised(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(bounds: Any) -> Any:
        raise ConnectionError("database went away")

    cluster.store.tallies = broken  # type: ignore[method-assign]
    collector = cluster.collector(max_age_s=0.0)
    metrics = scrape(collector)
    with caplog.at_level(logging.WARNING, "segue.metrics"):
        for _ in range(3):
            generate_latest(metrics)

    assert value(metrics, "segue_metrics_source_up", source="store") == 0
    assert value(metrics, "segue_metrics_source_up", source="broker") == 1
    assert value(metrics, "segue_queue_depth", queue="celery/thread") == 4
    assert value(metrics, "segue_jobs", state="running") is None
    assert [r.getMessage() for r in caplog.records].count(
        "metrics cannot read the store (ConnectionError: database went away)"
    ) == 1
