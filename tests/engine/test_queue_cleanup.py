"""A job's own queues are deleted from the queue backend when the job ends;
global queues outlive it."""

from __future__ import annotations

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.engine.engine import Engine
from orchestrator.queues import MemoryQueueBackend
from orchestrator.store import MemoryStore

FLOW = Workflow.loads(
    """
    name: queues
    nodes:
      - {id: ticks, type: Items, config: {items: [1, 2, 3]}}
      - {id: push, type: QueueWriter, config: {queue: work}}
      - {id: share, type: QueueWriter, config: {queue: shared, scope: global}}
      - {id: pull, type: QueueReader, config: {queue: work}}
      - {id: out, type: Output, config: {name: got}}
    edges:
      - {from: ticks.item, to: push.value}
      - {from: ticks.item, to: share.value}
      - {from: pull.item, to: out.value}
    """
)


class Deletions(MemoryQueueBackend):
    """The memory backend, noting which queues were deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted: list[str] = []

    def delete(self, queue: str) -> None:
        self.deleted.append(queue)
        super().delete(queue)


def test_a_finished_job_leaves_only_its_global_queues_behind() -> None:
    queues = Deletions()
    engine = Engine(MemoryStore(), MemoryArtifactStore(), builtin_registry(), queues=queues)
    try:
        job_id = engine.submit(FLOW)
        result = engine.wait(job_id, timeout=30)
    finally:
        engine.close()
    assert result.status == "completed"
    assert sorted(result.outputs["got"]) == [1, 2, 3]
    assert queues.deleted == [f"{job_id}:work"]
    assert f"{job_id}:work" not in queues.queues()
    assert queues.depth("shared") == 3  # global: waits for a reader of another job
