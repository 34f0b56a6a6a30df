"""A coordinator runs a loop's queue writes in the order it dispatched them, so a
queue receives the loop's values in order, however long each publish takes
(after a takeover, the dead coordinator's writes in flight are sent first)."""

from __future__ import annotations

import threading
import time
from typing import Any

from celery import Celery

from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.celery import CeleryExecutor
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.runner.spec import RunSpec
from orchestrator.scheduler import Dispatch
from tests.scheduler.scheduler_harness import plan_of

PLAN = plan_of(
    """
    name: writes
    nodes:
      - {id: items, type: Range, config: {stop: 8}}
      - {id: push, type: QueueWriter, config: {queue: q}}
    edges:
      - {from: items.value, to: push.value}
    """
)


class Publishing(NodeRunner):
    """A runner whose first publish is the slowest; records the order of publishes."""

    def __init__(self) -> None:
        super().__init__(builtin_registry(), MemoryArtifactStore())
        self.published: list[int] = []
        self.lock = threading.Lock()

    def run(self, spec: RunSpec) -> RunResult:
        time.sleep(0.2 if spec.iteration == 0 else 0.0)
        with self.lock:
            self.published.append(spec.iteration)
        return RunResult(spec.run_id, spec.attempt, "succeeded", {})


def test_queue_writes_run_one_at_a_time_in_dispatch_order() -> None:
    runner = Publishing()
    results: list[Any] = []
    executor = CeleryExecutor(Celery(), runner, results.extend)
    node = PLAN.nodes["push"]
    dispatches = [
        Dispatch(f"j:items:{i}:push", node, "items", i, 1, {"value": i}, job_id="j")
        for i in range(8)
    ]

    assert executor.submit(dispatches) == []
    deadline = time.monotonic() + 10
    while len(results) < len(dispatches) and time.monotonic() < deadline:
        time.sleep(0.01)
    executor.close()

    assert runner.published == list(range(8))
