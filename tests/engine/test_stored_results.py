"""Results that whoever ran them stored already are not written a second time.

A Segue worker records a run's end (the first completion wins) before it
reports it; the coordinator then skips its own write of a success, and still
writes what it decides itself (failures, retries, skips, runs it settles).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections import Counter
from collections.abc import Sequence

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.engine.engine import Engine
from orchestrator.engine.executor import ResultSink
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch, RunFinished
from orchestrator.store import MemoryStore, RunRecord

FLOW = Workflow.loads(
    """
    name: stored
    nodes:
      - {id: one, type: Constant, config: {value: 3}}
      - {id: zero, type: Constant, config: {value: 0}}
      - {id: double, type: Math, config: {op: mul}}
      - {id: broken, type: Math, config: {op: div}}
      - {id: out, type: Output, config: {name: out}}
      - {id: bad, type: Output, config: {name: bad}}
    edges:
      - {from: one.value, to: double.a}
      - {from: one.value, to: double.b}
      - {from: double.result, to: out.value}
      - {from: one.value, to: broken.a}
      - {from: zero.value, to: broken.b}
      - {from: broken.result, to: bad.value}
    """
)


class CountingStore(MemoryStore):
    """A memory store that counts the run records written, by run id and status."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter[tuple[str, str]] = Counter()

    def record_runs(self, runs: Sequence[RunRecord]) -> int:
        self.writes.update((run.node_id, run.status) for run in runs)
        return super().record_runs(runs)

    def complete_run(self, run: RunRecord) -> bool:
        self.writes[(run.node_id, run.status)] += 1
        return super().complete_run(run)


class StoringWorker:
    """Runs dispatches on a thread, stores each end, then reports it as stored - as a
    Segue worker does over the broker."""

    def __init__(self, runner: NodeRunner, store: CountingStore) -> None:
        self.runner, self.store = runner, store
        self.engine: Engine | None = None
        self._pool = cf.ThreadPoolExecutor(max_workers=2)

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunFinished]:
        for dispatch in dispatches:
            self._pool.submit(self._run, dispatch)
        return []

    def _run(self, dispatch: Dispatch) -> None:
        finished = self.runner.run(dispatch)
        self.store.complete_run(
            RunRecord(
                run_id=dispatch.run_id,
                job_id=dispatch.job_id,
                loop=dispatch.loop,
                iteration=dispatch.iteration,
                node_id=dispatch.node_id,
                type_name=dispatch.type_name,
                status=finished.status,
                attempt=dispatch.attempt,
                outputs=finished.outputs,
                error=finished.error,
                worker="worker-1",
            )
        )
        assert self.engine is not None
        self.engine.post_results([finished._replace(worker="worker-1")], stored=True)

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def test_a_success_stored_by_its_worker_is_not_written_again() -> None:
    store = CountingStore()
    workers: list[StoringWorker] = []

    def factory(runner: NodeRunner, _sink: ResultSink) -> StoringWorker:
        workers.append(StoringWorker(runner, store))
        return workers[-1]

    engine = Engine(store, MemoryArtifactStore(), builtin_registry(), executor=factory)
    workers[0].engine = engine
    try:
        job_id = engine.submit(FLOW)
        result = engine.wait(job_id, timeout=20)
    finally:
        engine.close()
    assert result.status == "failed"  # division by zero
    runs = {run.node_id: run for run in store.list_runs(job_id)}
    assert runs["double"].status == "succeeded" and runs["double"].outputs == {"result": 9}
    assert runs["double"].worker == "worker-1"
    assert store.writes[("double", "succeeded")] == 1  # the worker's write only
    assert sum(n for (node, _), n in store.writes.items() if node == "double") == 1
    # A failure is written by the engine as well: it decides failed or retrying.
    assert store.writes[("broken", "failed")] == 2
    assert runs["broken"].status == "failed"
    # Runs the engine settles itself are its own to write.
    assert store.writes[("out", "succeeded")] == 1
