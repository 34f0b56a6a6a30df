"""Chaos: the coordinator SIGKILLed again and again through one job (DESIGN
sections 3 and 5), including right after submit, mid-loop, during a queue
handoff between loops and during a takeover. Each new coordinator resumes within
10 s of starting, the job completes, and no node that succeeded runs again:
executions are counted in the workers' logs, not only records."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.store import open_store
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]
ITEMS = 90
RESUME_BOUND_S = 10.0


def _flow(sink: Path) -> Workflow:
    return Workflow.loads(
        f"""
        name: handoff
        nodes:
          - {{id: readings, type: Range, config: {{stop: {ITEMS}}}}}
          - {{id: nap, type: Sleep, config: {{seconds: 0.15}}}}
          - {{id: publish, type: QueueWriter, config: {{queue: naps}}}}
          - {{id: consume, type: QueueReader, config: {{queue: naps}}}}
          - {{id: total, type: Math, config: {{op: add}}}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}}}
          - {{id: sums, type: Output, config: {{name: sums}}}}
        edges:
          - {{from: readings.value, to: nap.value}}
          - {{from: nap.value, to: publish.value}}
          - {{from: consume.item, to: total.a}}
          - {{from: total.result, to: total.b, feedback: true, initial: 0}}
          - {{from: total.result, to: log.value}}
          - {{from: total.result, to: sums.value}}
        """
    )


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("kills"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


def _executions(cluster: Cluster, job_id: str) -> Counter[str]:
    pattern = re.compile(
        r"Task segue\.node\.\w+\[(" + job_id + r":[^\]]+)\] succeeded .*: 'succeeded'"
    )
    return Counter(pattern.findall((cluster.root / "thread.log").read_text(errors="replace")))


def _ended(store, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    return store.get_job(job_id).status not in ("pending", "running")


def _finished_after(store, job_id: str, at: float) -> bool:  # type: ignore[no-untyped-def]
    return any(r.finished_at and r.finished_at > at for r in store.list_runs(job_id))


def test_a_job_survives_its_coordinator_killed_at_every_stage(
    cluster: Cluster, tmp_path: Path
) -> None:
    sink = tmp_path / "sums.jsonl"
    store = open_store(cluster.database_url, cluster.root / "home")
    resumed: list[float] = []
    # seconds after the previous (re)start: right after submit, mid-loop while the
    # reader loop consumes the queue, and twice during a takeover's first second
    pauses = [0.0, 1.5, 2.5, 0.4, 3.0, 0.2, 2.0]
    with cluster.client() as client:
        job = client.submit(_flow(sink))
        for pause in pauses:
            time.sleep(pause)
            if _ended(store, job.id):
                break
            cluster.kill("coordinator", signal.SIGKILL)
            started = time.time()
            cluster.start("coordinator")
            deadline = time.monotonic() + 30
            while not _finished_after(store, job.id, started):
                if _ended(store, job.id):
                    break
                assert time.monotonic() < deadline, "no progress after a restart"
                time.sleep(0.05)
            resumed.append(time.time() - started)
        result = job.wait(timeout=120)
        runs = client.runs(job.id)
    store.close()

    assert result.status == "completed", result.error
    got = result.outputs["sums"]
    consumed = [b - a for a, b in zip([0, *got], got, strict=False)]
    loops = {n: (x.status, x.iterations, x.failed_iterations) for n, x in result.loops.items()}
    assert sorted(consumed) == list(range(ITEMS)), (loops, consumed)  # each item once
    assert len(resumed) >= 5 and max(resumed) <= RESUME_BOUND_S, resumed
    assert len(runs) == len({r.run_id for r in runs})
    assert {r.status for r in runs} == {"succeeded"}
    lines = [json.loads(line)["value"] for line in sink.read_text().splitlines()]
    assert sorted(lines) == sorted(got)
    executions = _executions(cluster, job.id)
    assert executions and max(executions.values()) == 1, executions.most_common(3)
