"""The in-process executor: the worker task run in the coordinator's process, with no
services (the memory store and memory channels).

A run takes the path a Celery worker gives it (claimed by the worker, its result
published to the job's results queue, recorded by the coordinator); queue nodes
stay with the coordinator, as in a cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Client, Workflow
from tests.support.inprocess import InProcessCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[InProcessCluster]:
    running = InProcessCluster(tmp_path)
    yield running
    running.close()


@pytest.fixture
def client(cluster: InProcessCluster) -> Iterator[Client]:
    with cluster.client() as client:
        yield client


def test_runs_go_to_the_worker_task_and_queue_nodes_stay_with_the_coordinator(
    client: Client,
) -> None:
    job = client.submit(Workflow.load(EXAMPLES / "two-loops-queue.yaml"))

    assert job.wait(timeout=30).status == "completed"
    workers = {run.node: run.worker for run in job.runs() if run.worker is not None}
    assert workers == {
        "readings": "inprocess-worker",
        "factor": "inprocess-worker",
        "scaled": "inprocess-worker",
        "label": "inprocess-worker",
        "publish": "coordinator",
        "consume": "coordinator",
    }


def test_a_run_that_outlasts_claim_after_shows_running_on_its_worker(client: Client) -> None:
    workflow = Workflow.loads(
        """
        name: slow
        nodes:
          - {id: seed, type: Constant, config: {value: 1}}
          - {id: nap, type: Sleep, config: {seconds: 1.0}}
        edges:
          - {from: seed.value, to: nap.value}
        """
    )
    job = client.submit(workflow)
    deadline = time.monotonic() + 5
    while not [r for r in job.runs() if r.node == "nap" and r.status == "running"]:
        assert time.monotonic() < deadline, job.runs()
        time.sleep(0.02)
    [running] = [r for r in job.runs() if r.node == "nap"]
    assert running.worker == "inprocess-worker"
    assert job.wait(timeout=30).status == "completed"


def test_closing_the_cluster_stops_every_thread_it_started(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    cluster = InProcessCluster(tmp_path)
    with cluster.client() as client:
        assert client.submit(Workflow.load(EXAMPLES / "quickstart.yaml")).wait(30).outputs
    cluster.close()

    assert set(threading.enumerate()) - before == set()
