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
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch
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

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
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


def test_a_run_recorded_failed_but_never_reported_fails_with_its_recorded_traceback(
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
    trace = 'Traceback (most recent call last):\n  File "w.py", line 9, in run\nOSError: disk\n'
    try:
        job_id = engine.submit(FLOW)
        time.sleep(0.2)
        run_id = f"{job_id}:main:0:nap"
        failed = RunRecord(
            run_id=run_id,
            job_id=job_id,
            loop="main",
            iteration=0,
            node_id="nap",
            type_name="Sleep",
            status="failed",
            attempt=1,
            error="OSError: disk",
            traceback=trace,
            finished_at=time.time(),
        )
        store.record_runs([failed])
        engine.reconcile(older_than_s=0.1)
        result = engine.wait(job_id, timeout=10)
        events = [e for e in engine.events(job_id, timeout=5) if e.run_id == run_id]
    finally:
        engine.close()
    assert result.status == "failed"
    assert result.error is not None and "OSError: disk" in result.error
    assert [(e.status, e.error, e.traceback) for e in events] == [
        ("failed", "OSError: disk", trace)
    ]
    run = store.get_run(run_id)
    assert run is not None and (run.error, run.traceback) == ("OSError: disk", trace)
