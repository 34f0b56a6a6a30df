"""Dispatching node runs as Celery tasks.

Every run goes to the broker queue its route names, as the task of its node
type, with the run id as the task id. Queue nodes are the exception: they
read and write broker queues themselves and must hold a message unacknowledged
until their iteration ends, so they run here, in the coordinator, on a small
thread pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery

from orchestrator.broker import task_name
from orchestrator.engine.executor import ENGINE_DRIVEN, ResultSink
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch
from orchestrator.scheduler.events import RunFinished


class CeleryExecutor:
    """Publishes dispatches as Celery tasks; runs queue nodes locally."""

    def __init__(self, app: Celery, runner: NodeRunner, on_results: ResultSink) -> None:
        self.app = app
        self.runner = runner
        self.on_results = on_results
        self._local = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="segue-queues")
        self._lock = threading.Lock()

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunFinished]:
        """Publish every dispatch (queue nodes run on the local pool)."""
        with self._lock, self.app.producer_or_acquire() as producer:
            for dispatch in dispatches:
                if dispatch.type_name in ENGINE_DRIVEN:
                    self._local.submit(self._run_local, dispatch)
                    continue
                request: dict[str, Any] = dispatch.to_request(dispatch.job_id, {}).model_dump(
                    mode="json"
                )
                self.app.send_task(
                    task_name(dispatch.type_name),
                    args=[request],
                    task_id=dispatch.run_id,
                    queue=dispatch.node.route.queue,
                    producer=producer,
                    # What Flower and the task events show as the arguments. Celery's
                    # default, a saferepr of the whole request, costs ~0.4 ms of the
                    # ~1 ms a dispatch takes; the run id names the same request.
                    argsrepr=f"[run {dispatch.run_id} attempt {dispatch.attempt}]",
                    kwargsrepr="{}",
                )
        return []

    def _run_local(self, dispatch: Dispatch) -> None:
        self.on_results([self.runner.run(dispatch)])

    def close(self, wait: bool = True) -> None:
        """Stop the local pool."""
        self._local.shutdown(wait=wait, cancel_futures=True)
