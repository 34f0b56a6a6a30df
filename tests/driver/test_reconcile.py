"""Runs dispatched and never heard of again are chased (DESIGN section 10).

A task can die with a broker error and be acknowledged: the coordinator
reconciles runs it dispatched and never heard back from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.driver import Driver
from orchestrator.driver.executor import ResultSink
from orchestrator.engine.executor import LocalExecutor
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch, RunFinished
from orchestrator.store import MemoryStore

FLOW = Workflow.loads(
    """
    name: lossy
    nodes:
      - {id: one, type: Constant, config: {value: 3}}
      - {id: nap, type: Sleep, config: {seconds: 0.01}}
      - {id: out, type: Output, config: {name: out}}
    edges:
      - {from: one.value, to: nap.value}
      - {from: nap.value, to: out.value}
    """
)


class LosesFirstDispatch(LocalExecutor):
    """A local executor whose first dispatch of each run vanishes, like a lost task."""

    def __init__(self, runner: NodeRunner, sink: ResultSink) -> None:
        super().__init__(runner, sink)
        self.seen: set[str] = set()
        self.lost: list[str] = []

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunFinished]:
        kept = []
        for dispatch in dispatches:
            if dispatch.type_name == "Sleep" and dispatch.run_id not in self.seen:
                self.seen.add(dispatch.run_id)
                self.lost.append(dispatch.run_id)
                continue
            kept.append(dispatch)
        return super().submit(kept)


def test_a_lost_dispatch_is_sent_again_by_reconciliation(tmp_path: Path) -> None:
    executors: list[LosesFirstDispatch] = []

    def factory(runner: NodeRunner, sink: ResultSink) -> LosesFirstDispatch:
        executors.append(LosesFirstDispatch(runner, sink))
        return executors[-1]

    engine = Driver(MemoryStore(), MemoryArtifactStore(), builtin_registry(), factory)
    try:
        job_id = engine.submit(FLOW)
        time.sleep(0.3)
        assert not engine.job(job_id).done.is_set()  # the Sleep run never came back
        assert executors[0].lost == [f"{job_id}:main:0:nap"]

        engine.reconcile(older_than_s=0.1)
        result = engine.wait(job_id, timeout=10)
    finally:
        engine.close()
    assert result.status == "completed"
    assert result.outputs == {"out": 3}


def test_a_run_finished_in_the_store_but_never_reported_gets_its_recorded_result(
    tmp_path: Path,
) -> None:
    from orchestrator.store import RunRecord

    store = MemoryStore()
    engine = Driver(
        store,
        MemoryArtifactStore(),
        builtin_registry(),
        lambda runner, sink: LosesFirstDispatch(runner, sink),
    )
    try:
        job_id = engine.submit(FLOW)
        time.sleep(0.2)
        run_id = f"{job_id}:main:0:nap"
        # A worker ran it and recorded it, but its report was lost.
        store.record_runs(
            [
                RunRecord(
                    run_id=run_id,
                    job_id=job_id,
                    loop="main",
                    iteration=0,
                    node_id="nap",
                    type_name="Sleep",
                    status="succeeded",
                    attempt=1,
                    outputs={"value": 42},
                    finished_at=time.time(),
                )
            ]
        )
        engine.reconcile(older_than_s=0.1)
        result = engine.wait(job_id, timeout=10)
    finally:
        engine.close()
    assert result.status == "completed"
    assert result.outputs == {"out": 42}  # the recorded result, not a second execution
