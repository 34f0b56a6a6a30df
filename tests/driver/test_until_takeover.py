"""A loop that ends itself survives its driver (DESIGN 3.15 with section 5): the
next driver replays the journal, rebuilds where the loop stands, and ends it
after the same iteration, never asking its producer for one more item."""

from __future__ import annotations

import time
from pathlib import Path

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.driver import Driver
from orchestrator.engine.executor import LocalExecutor
from orchestrator.store import MemoryStore
from tests.driver.test_takeover_at_the_end import DiesBeforeRecordingTheEnd

SLOW_COUNT = Workflow.loads(
    """
    name: slow-count
    nodes:
      - {id: limit, type: Constant, config: {value: 8}}
      - {id: ticks, type: Count}
      - {id: nap, type: Sleep, config: {seconds: 0.05}}
      - {id: done, type: Compare, config: {op: ge}}
      - {id: out, type: Output, config: {name: values}}
    edges:
      - {from: ticks.value, to: nap.value}
      - {from: nap.value, to: done.a}
      - {from: limit.value, to: done.b}
      - {from: nap.value, to: out.value}
    loops:
      ticks: {until: done.result, max_iterations: 100}
    """
)
CONVERGE = Workflow.load(Path(__file__).resolve().parents[2] / "examples" / "converge.yaml")


def driver(store: MemoryStore) -> Driver:
    return Driver(store, MemoryArtifactStore(), builtin_registry(), LocalExecutor)


def test_a_driver_taking_over_mid_loop_ends_the_loop_after_the_same_iteration() -> None:
    store = MemoryStore()
    first = driver(store)
    job_id = first.submit(SLOW_COUNT)
    deadline = time.monotonic() + 10
    while sum(r.node_id == "done" for r in store.list_runs(job_id)) < 3:
        assert time.monotonic() < deadline, "the loop did not start"
        time.sleep(0.01)
    first.flush()
    first.close()  # the first driver goes away mid-loop
    record = store.get_job(job_id)
    assert record is not None and record.status == "running"

    second = driver(store)
    try:
        assert second.adopt(record)
        result = second.wait(job_id, timeout=20)
        second.flush()
    finally:
        second.close()

    assert result.status == "completed", result.error
    assert result.outputs == {"values": list(range(9))}
    producer_runs = sorted(r.iteration for r in store.list_runs(job_id) if r.node_id == "ticks")
    assert producer_runs == list(range(9))  # none after the iteration that ended the loop
    assert {r.name: r.status for r in store.list_loops(job_id)}["ticks"] == "completed"


def test_a_converged_job_whose_end_was_not_recorded_is_finished_by_the_next_driver() -> None:
    store = DiesBeforeRecordingTheEnd()
    first = driver(store)
    job_id = first.submit(CONVERGE)
    first.wait(job_id, timeout=20)
    first.flush()
    first.close()
    record = store.get_job(job_id)
    assert record is not None and record.status == "running"

    store.crashed = False
    second = driver(store)
    try:
        assert second.adopt(record)
        result = second.wait(job_id, timeout=20)
        second.flush()
    finally:
        second.close()

    assert result.status == "completed"
    assert result.outputs["e"] == 2.7182818284590455
    assert {r.name: r.status for r in store.list_loops(job_id)}["k"] == "completed"
    assert max(r.iteration for r in store.list_runs(job_id) if r.node_id == "k") == 17
