"""Chaos: a storm of control requests (DESIGN section 3, items 8 and 13).

Four threads send 1,000 pause and resume requests at random against two
running loops of a cluster job, then one stops a loop and another cancels a
second job. Every loop state change recorded is a legal transition, no item is
lost or repeated across the pauses, every request is accepted or refused with a
named error, and no process fails."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from orchestrator import LoopEndedError, Workflow
from orchestrator.store import open_store
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]
REQUESTS, THREADS = 1000, 4
LEGAL = {
    "pending": {"running", "paused", "stopped", "cancelled", "completed", "failed"},
    "running": {"paused", "completed", "stopped", "failed", "cancelled"},
    "paused": {"running", "stopped", "cancelled", "failed"},
}
FLOW = Workflow.loads(
    """
    name: steered
    nodes:
      - {id: left, type: Range, config: {stop: 150, interval_s: 0.01}}
      - {id: right, type: Range, config: {stop: 100000, interval_s: 0.01}}
      - {id: lefts, type: Output, config: {name: lefts}}
      - {id: rights, type: Output, config: {name: rights}}
    edges:
      - {from: left.value, to: lefts.value}
      - {from: right.value, to: rights.value}
    """
)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(tmp_path_factory.mktemp("steer"), broker, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


def test_a_thousand_requests_from_four_threads_record_only_legal_transitions(
    cluster: Cluster,
) -> None:
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    with cluster.client() as client:
        job = client.submit(FLOW)
        other = client.submit(FLOW)

        def spam(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(REQUESTS // THREADS):
                time.sleep(rng.uniform(0, 0.02))  # ~5 s in all: many of the steward's reads
                loop = rng.choice(["left", "right"])
                ask = rng.choice([client.pause_loop, client.resume_loop])
                try:
                    ask(job.id, loop)
                    outcome = "accepted"
                except LoopEndedError:
                    outcome = "refused: ended"
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    outcomes[outcome] += 1

        threads = [threading.Thread(target=spam, args=(seed,)) for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        client.resume_loop(job.id, "left")
        client.stop_loop(job.id, "right")
        client.cancel(other.id)
        result = job.wait(timeout=120)
        cancelled = other.wait(timeout=60)

    assert sum(outcomes.values()) == REQUESTS, outcomes
    assert result.status == "completed", result.error
    assert result.outputs["lefts"] == list(range(150))  # none lost, none repeated
    rights = result.outputs["rights"]
    assert rights == list(range(len(rights)))  # stopped: a prefix, without a gap
    assert (result.loops["left"].status, result.loops["right"].status) == (
        "completed",
        "stopped",
    )
    assert cancelled.status == "cancelled"
    store = open_store(cluster.database_url, cluster.root / "home")
    changes: Counter[str] = Counter()
    try:
        for job_id in (job.id, other.id):
            states: dict[str, str] = {}
            for event in store.read_events(job_id, limit=100_000):
                if event.kind != "loop" or event.loop is None or event.status is None:
                    continue
                before = states.get(event.loop, "pending")
                if event.status != before:
                    assert event.status in LEGAL.get(before, set()), (
                        f"{event.loop}: {before} -> {event.status}"
                    )
                    changes[event.status] += 1
                states[event.loop] = event.status
    finally:
        store.close()
    assert changes["paused"] >= 3 and changes["running"] >= 3, changes  # it was steered
    for name in ("coordinator", "thread"):
        assert cluster.processes[name].poll() is None, f"{name} exited"
        assert "Traceback" not in cluster.log(name), cluster.log(name)
