"""A coordinator taking a job over applies the results its predecessor left on the
broker before it sends anything again (DESIGN section 5): a run whose result was
reported is never run twice, and a run the predecessor may have sent goes out
marked ``resent``, for the worker to claim first."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.driver import Driver
from orchestrator.driver.executor import ResultSink
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch
from orchestrator.store import MemoryStore

FLOW = Workflow.loads(
    """
    name: chain
    nodes:
      - {id: one, type: Constant, config: {value: 3}}
      - {id: a, type: Sleep, config: {seconds: 0}}
      - {id: b, type: Sleep, config: {seconds: 0}}
      - {id: c, type: Sleep, config: {seconds: 0}}
      - {id: out, type: Output, config: {name: out}}
    edges:
      - {from: one.value, to: a.value}
      - {from: a.value, to: b.value}
      - {from: b.value, to: c.value}
      - {from: c.value, to: out.value}
    """
)


class Holding:
    """An executor that keeps what it is sent (the test plays the workers)."""

    def __init__(self, runner: NodeRunner, _sink: ResultSink) -> None:
        self.sent: list[Dispatch] = []

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        self.sent.extend(dispatches)
        return []

    def close(self, wait: bool = True) -> None:
        pass

    def wait_for(self, node: str) -> Dispatch:
        deadline = time.monotonic() + 10
        while not any(d.node_id == node for d in self.sent):
            assert time.monotonic() < deadline, f"{node} was never sent: {self.sent}"
            time.sleep(0.005)
        return next(d for d in self.sent if d.node_id == node)


def engine_with(store: MemoryStore) -> tuple[Driver, Holding]:
    held: list[Holding] = []

    def factory(runner: NodeRunner, sink: ResultSink) -> Holding:
        held.append(Holding(runner, sink))
        return held[-1]

    engine = Driver(store, MemoryArtifactStore(), builtin_registry(), factory)
    return engine, held[0]


def done(dispatch: Dispatch) -> RunResult:
    return RunResult(dispatch.run_id, dispatch.attempt, "succeeded", {"value": 3}, None)


@pytest.mark.parametrize("left", ["b", "b and c"])
def test_results_left_on_the_broker_are_applied_before_runs_are_sent_again(left: str) -> None:
    store = MemoryStore()
    first, first_sent = engine_with(store)
    job_id = first.submit(FLOW)
    first.post_results([done(first_sent.wait_for("one"))])  # journaled
    first.post_results([done(first_sent.wait_for("a"))])
    b = first_sent.wait_for("b")
    first.flush()
    # The first coordinator dies here; b (and c, which b's result would start)
    # finished and were reported, but nothing of that was journaled.
    backlog = [done(b)]
    if left == "b and c":
        backlog.append(RunResult(f"{job_id}:main:0:c", 1, "succeeded", {"value": 3}, None))
    record = store.get_job(job_id)
    assert record is not None and record.status == "running"

    second, second_sent = engine_with(store)
    released: list[bool] = []
    try:
        assert second.adopt(record, backlog, lambda: released.append(True))
        if left == "b and c":
            assert second.wait(job_id, timeout=10).outputs == {"out": 3}
            assert second_sent.sent == []  # nothing ran twice
        else:
            c = second_sent.wait_for("c")
            assert c.resent  # the first coordinator may have sent it: claimed first
            assert [d.node_id for d in second_sent.sent] == ["c"]  # b is not sent again
            second.post_results([done(c)])
            assert second.wait(job_id, timeout=10).outputs == {"out": 3}
        second.flush()
        assert released == [True]
    finally:
        second.close()
        first.close()
