"""In-flight run states in the embedded engine (DESIGN section 4, States): a run
queued or running for longer than a moment shows so in ``runs()``, in the
job's events and in the store, in every pool; short runs write nothing more;
a late in-flight write never replaces a finished run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Client, WorkflowBuilder
from orchestrator.inflight import IN_FLIGHT_S, keep_in_flight
from orchestrator.settings import Settings
from orchestrator.store import MemoryStore, RunRecord

pytestmark = pytest.mark.timeout(90)
NAP_S = 1.0


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(home=tmp_path / "home", processes=1, threads=1)
    with Client.embedded(settings=settings) as embedded:
        yield embedded


def _naps(pool: str, count: int) -> WorkflowBuilder:
    b = WorkflowBuilder(f"naps-{pool}")
    ticks = b.node("ticks", "Range", config={"stop": 1})
    for i in range(count):
        nap = b.node(f"nap{i}", "Sleep", config={"seconds": NAP_S})
        b.edge(ticks["value"], nap["value"])
    b.loop("ticks", pool=pool)
    return b


def _wait_for(read, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := read()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


@pytest.mark.parametrize("pool", ["thread", "asyncio", "process"])
def test_a_long_run_shows_running_in_runs_and_events_then_its_end(
    client: Client, pool: str
) -> None:
    job = client.submit(_naps(pool, 1).build())

    running = _wait_for(
        lambda: [r for r in client.runs(job.id) if r.node == "nap0" and r.status == "running"],
        timeout=30,
    )
    assert running[0].started_at is not None and running[0].worker
    result = job.wait(timeout=30)
    assert result.status == "completed"
    [nap] = [r for r in client.runs(job.id) if r.node == "nap0"]
    assert nap.status == "succeeded"
    statuses = [e.status for e in client.events(job.id) if e.node == "nap0" and e.kind == "run"]
    assert statuses[:1] == ["running"] or statuses[:2] == ["queued", "running"], statuses
    assert statuses[-1] == "succeeded"


def test_a_run_waiting_for_a_busy_pool_shows_queued_then_running(client: Client) -> None:
    job = client.submit(_naps("thread", 2).build())  # one thread: one nap waits

    queued = _wait_for(lambda: [r for r in client.runs(job.id) if r.status == "queued"])
    assert len(queued) == 1 and queued[0].node in ("nap0", "nap1")
    waiting = queued[0].node
    _wait_for(
        lambda: [r for r in client.runs(job.id) if r.node == waiting and r.status == "running"]
    )
    assert job.wait(timeout=30).status == "completed"
    events = [(e.node, e.status) for e in client.events(job.id) if e.kind == "run"]
    assert events.index((waiting, "queued")) < events.index((waiting, "running"))
    assert events.index((waiting, "running")) < events.index((waiting, "succeeded"))


def test_short_runs_write_no_in_flight_state(client: Client) -> None:
    b = WorkflowBuilder("quick")
    ticks = b.node("ticks", "Range", config={"stop": 50})
    b.edge(ticks["value"], b.node("text", "Format", config={"template": "{value}"})["value"])
    b.loop("ticks", pool="thread")
    job = client.submit(b.build())
    assert job.wait(timeout=30).status == "completed"
    events = client.events(job.id)
    assert not [e for e in events if e.kind == "run" and e.status in ("queued", "running")]
    assert IN_FLIGHT_S == 0.25


def test_a_late_in_flight_write_never_replaces_a_finished_run() -> None:
    store = MemoryStore()
    done = RunRecord("j:main:0:n", "j", "main", 0, "n", "Sleep", "succeeded", finished_at=2.0)
    store.record_runs([done])
    data = {"status": "running", "attempt": 1, "type": "Sleep", "queue": "thread", "at": 1.0}

    assert keep_in_flight(store, [("j:main:0:n", data)]) == []
    assert keep_in_flight(store, [("j:main:0:n", {**data, "status": "queued"})]) == []
    stored = store.get_run("j:main:0:n")
    assert stored is not None and stored.status == "succeeded"
    assert store.read_events("j") == []
