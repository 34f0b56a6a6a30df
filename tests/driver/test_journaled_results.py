"""Results reported from elsewhere are released once they are journaled and recorded.

A coordinator takes a result off the broker only when the engine says its
journal entry and the run's end are in the store (``post_results``'s
``on_journaled``); a result whose job is not driven here is never released.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Sequence

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.driver import Driver
from orchestrator.driver.executor import ResultSink
from orchestrator.driver.journal import INPUT_KIND, events_of
from orchestrator.engine.executor import LocalExecutor
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch
from orchestrator.store import MemoryStore

FLOW = Workflow.loads(
    """
    name: reported
    nodes:
      - {id: one, type: Constant, config: {value: 3}}
      - {id: double, type: Math, config: {op: mul}}
      - {id: out, type: Output, config: {name: out}}
    edges:
      - {from: one.value, to: double.a}
      - {from: one.value, to: double.b}
      - {from: double.result, to: out.value}
    """
)


class ReportingWorker:
    """Runs dispatches on a thread and reports each result the way the coordinator
    hands over what it read from a job's results queue."""

    def __init__(self, runner: NodeRunner, store: MemoryStore) -> None:
        self.runner, self.store = runner, store
        self.engine: Driver | None = None
        self.released: dict[str, tuple[str | None, bool]] = {}  # run -> (status, journaled)
        self._pool = cf.ThreadPoolExecutor(max_workers=2)

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        for dispatch in dispatches:
            self._pool.submit(self._run, dispatch)
        return []

    def _run(self, dispatch: Dispatch) -> None:
        finished = self.runner.run(dispatch)._replace(worker="worker-1")
        assert self.engine is not None
        self.engine.post_results([finished], lambda: self._release(dispatch))

    def _release(self, dispatch: Dispatch) -> None:
        # What the store holds when the coordinator would delete the message.
        run = self.store.get_run(dispatch.run_id)
        journal = self.store.read_events(dispatch.job_id, after=0, limit=1000)
        journaled = any(
            isinstance(event, RunResult) and event.run_id == dispatch.run_id
            for e in journal
            if e.kind == INPUT_KIND
            for event in events_of(e)
        )
        self.released[dispatch.node_id] = (run.status if run else None, journaled)

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def test_a_result_is_released_once_its_journal_entry_and_run_end_are_stored() -> None:
    store = MemoryStore()
    workers: list[ReportingWorker] = []

    def factory(runner: NodeRunner, _sink: ResultSink) -> ReportingWorker:
        workers.append(ReportingWorker(runner, store))
        return workers[-1]

    engine = Driver(store, MemoryArtifactStore(), builtin_registry(), factory)
    workers[0].engine = engine
    try:
        job_id = engine.submit(FLOW)
        assert engine.wait(job_id, timeout=20).outputs == {"out": 9}
        engine.flush()
    finally:
        engine.close()
    assert workers[0].released["double"] == ("succeeded", True)
    double = next(r for r in store.list_runs(job_id) if r.node_id == "double")
    assert double.worker == "worker-1" and double.outputs == {"result": 9}


def test_a_result_for_a_job_not_driven_here_is_never_released() -> None:
    engine = Driver(MemoryStore(), MemoryArtifactStore(), builtin_registry(), LocalExecutor)
    released = threading.Event()
    try:
        stray = RunResult("elsewhere:main:0:n", 1, "succeeded", {"value": 1}, None)
        engine.post_results([stray], released.set)
        engine.flush()
        assert not released.wait(0.3)
    finally:
        engine.close()
