"""A takeover carries out what the replayed decisions still owe (DESIGN section 5):
a driver that died after journaling a job's last inputs but before recording its
end leaves a job the next driver finishes, instead of one `running` for ever."""

from __future__ import annotations

from typing import Any

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.driver import Driver
from orchestrator.engine.executor import LocalExecutor
from orchestrator.store import MemoryStore

FLOW = Workflow.loads(
    """
    name: short-loop
    nodes:
      - {id: ticks, type: Range, config: {stop: 4}}
      - {id: sq, type: Math, config: {op: mul}}
      - {id: out, type: Output, config: {name: squares}}
    edges:
      - {from: ticks.value, to: sq.a}
      - {from: ticks.value, to: sq.b}
      - {from: sq.result, to: out.value}
    """
)


class DiesBeforeRecordingTheEnd(MemoryStore):
    """A store whose first driver dies just before the job's end and the loops' last
    states are written: what was journaled stays, the rest never lands."""

    crashed = True

    def update_job(self, job_id: str, *, status: str, at: float, **kwargs: Any) -> None:
        if self.crashed and status in ("completed", "failed", "cancelled"):
            return
        super().update_job(job_id, status=status, at=at, **kwargs)

    def save_loops(self, loops: Any) -> None:
        if self.crashed:
            loops = [r for r in loops if r.status not in ("completed", "stopped")]
        super().save_loops(loops)


def test_a_job_whose_end_was_journaled_but_not_recorded_is_finished_by_the_next_driver() -> None:
    store = DiesBeforeRecordingTheEnd()
    first = Driver(store, MemoryArtifactStore(), builtin_registry(), LocalExecutor)
    job_id = first.submit(FLOW)
    first.wait(job_id, timeout=10)
    first.flush()
    first.close()
    record = store.get_job(job_id)
    assert record is not None and record.status == "running"  # what the crash left
    assert {r.name: r.status for r in store.list_loops(job_id)}["ticks"] == "running"

    store.crashed = False  # the next driver's writes land
    second = Driver(store, MemoryArtifactStore(), builtin_registry(), LocalExecutor)
    try:
        assert second.adopt(record)
        result = second.wait(job_id, timeout=10)
        second.flush()
    finally:
        second.close()

    assert result.status == "completed"
    assert result.outputs == {"squares": [0, 1, 4, 9]}
    assert store.get_job(job_id).status == "completed"  # type: ignore[union-attr]
    assert {r.name: r.status for r in store.list_loops(job_id)} == {
        "main": "completed",
        "ticks": "completed",
    }
    runs = store.list_runs(job_id)
    assert all(r.status == "succeeded" for r in runs), runs
