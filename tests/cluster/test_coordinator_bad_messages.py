"""Malformed wake-ups and results never stop a coordinator. Wake-ups are broadcast, so
one bad message on ``segue.control`` (``{"job": 12345}`` made each coordinator exit
with a SQL type error) reaches every coordinator: each logs it once, drops it and
serves on; a malformed message on a job's results queue is dropped the same way and
the job ends as it would have.

Two real coordinator processes and a thread worker, on Redis and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from orchestrator import Workflow
from orchestrator.channels import CONTROL_QUEUE, RESULTS_QUEUE
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
COORDINATORS = ("coordinator", "coordinator-2")
PACED = Workflow.loads(
    """
    name: paced
    nodes:
      - {id: ticks, type: Range, config: {stop: 20, interval_s: 0.1}}
      - {id: out, type: Output, config: {name: ticks}}
    edges:
      - {from: ticks.value, to: out.value}
    """
)
BAD_CONTROL: tuple[bytes, ...] = (
    b'{"job": 12345}',
    b'{"kind": "submit", "job": 12345}',
    b'{"kind": "submit", "job": "a\\u0000b"}',
    b'{"kind": "cancel", "job": ["x"]}',
    b'{"kind": "reboot", "job": "abc"}',
    b"[1, 2, 3]",
    b"not json",
)


@pytest.fixture(scope="module")
def two_coordinators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("bad-messages"), broker, database)
        try:
            for name in (*COORDINATORS, "thread"):
                cluster.start(name)
            cluster.wait_ready(*COORDINATORS, "thread")
            yield cluster
        finally:
            cluster.stop()


def full_log(cluster: Cluster, name: str) -> str:
    """Everything a process wrote (``Cluster.log`` keeps only the end)."""
    return (cluster.root / f"{name}.log").read_text(errors="replace")


def alive(cluster: Cluster) -> None:
    for name in COORDINATORS:
        assert cluster.processes[name].poll() is None, cluster.log(name)


def logged(cluster: Cluster, text: str, times: int, timeout: float = 20) -> None:
    """Wait until every coordinator logged ``text`` at least ``times`` times."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {name: full_log(cluster, name).count(text) for name in COORDINATORS}
        if all(count >= times for count in counts.values()):
            return
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)


def test_malformed_wake_ups_are_dropped_by_every_coordinator_which_serves_on(
    two_coordinators: Cluster,
) -> None:
    raw = redis.Redis.from_url(two_coordinators.broker_url)
    for body in BAD_CONTROL:
        raw.xadd(CONTROL_QUEUE, {"b": body})

    logged(two_coordinators, "dropped a malformed control message", 5)
    logged(two_coordinators, "not a JSON object", 2)
    alive(two_coordinators)
    with two_coordinators.client() as client:
        result = client.submit(PACED).wait(timeout=60)
    assert result.status == "completed", result.error
    assert result.outputs == {"ticks": list(range(20))}
    alive(two_coordinators)


def test_malformed_results_are_dropped_and_the_job_ends_as_it_would_have(
    two_coordinators: Cluster,
) -> None:
    raw = redis.Redis.from_url(two_coordinators.broker_url)
    with two_coordinators.client() as client:
        job = client.submit(PACED)
        stream = f"{RESULTS_QUEUE}.{job.id}"
        deadline = time.monotonic() + 30
        while not raw.exists(stream):  # the driving coordinator follows the job
            assert time.monotonic() < deadline
            time.sleep(0.05)
        bad = [
            {"run_id": 5, "status": "succeeded"},
            {"run_id": f"{job.id}:main:0:out", "status": "exploded"},
            {"run_id": "someone-else:main:0:out", "status": "succeeded"},
            {"node_event": {"run_id": "x", "kind": "progress"}},
            {"node_event": {"run_id": f"{job.id}:ticks:zero:out", "kind": "progress"}},
            {"node_event": {"run_id": f"{job.id}:ticks:1:out", "kind": 7}},
            {"node_event": "oops"},
        ]
        for body in bad:
            raw.xadd(stream, {"b": json.dumps(body)})
        raw.xadd(stream, {"b": b"\xff not json"})
        result = job.wait(timeout=60)
    assert result.status == "completed", result.error
    assert result.outputs == {"ticks": list(range(20))}
    logs = "".join(full_log(two_coordinators, name) for name in COORDINATORS)
    assert logs.count(f"dropped a message on the results queue of job {job.id}") == len(bad)
    assert "Traceback" not in logs
    alive(two_coordinators)
