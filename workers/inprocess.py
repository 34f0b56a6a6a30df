"""An executor that runs the worker task in this process: a coordinator without Celery.

It has the Celery executor's interface, and where that one publishes a task
message, this one hands the same JSON request to the code a Celery worker runs
for it (:func:`workers.task.execute`: the claim, the node run, the result
published to the job's results queue), on a thread pool of this process.
Results reach the coordinator through its channels, as from any worker; queue
nodes run on the coordinator's own runner, as with Celery. Over the memory
store and memory channels the whole coordinator and worker path runs in one
process without services.

Each broker queue a run is routed to gets a pool of its own, as each gets its
workers in a cluster: one slot for a GPU queue (DESIGN 3.10), ``threads`` for
the others. Runs of ``pool: process`` run on threads here: the worker shares
this process's store.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from orchestrator.driver.executor import ResultSink
from orchestrator.planner import Route
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch
from workers.runtime import WorkerRuntime
from workers.task import execute

log = logging.getLogger("segue.worker")
THREADS = 8
"""Task slots per queue, as a thread worker of the test cluster has."""


class InProcessExecutor:
    """Runs dispatched node runs through the worker task on this process's threads.

    Args:
        runtime: What the worker task uses: store, channels, runner, claims.
        runner: The coordinator's runner, for queue nodes.
        on_results: Where queue nodes' results go (the coordinator's engine).
        threads: Task slots per queue (a GPU queue has one).
    """

    def __init__(
        self,
        runtime: WorkerRuntime,
        runner: NodeRunner,
        on_results: ResultSink,
        *,
        threads: int = THREADS,
    ) -> None:
        self.runtime = runtime
        self.runner = runner
        self.on_results = on_results
        self.threads = threads
        self._local = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="segue-queues")
        self._pools: dict[str, cf.ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        """Hand every dispatch to the worker task (queue nodes run on the local pool)."""
        for dispatch in dispatches:
            if dispatch.node.role.queue:
                self._local.submit(self._run_local, dispatch)
                continue
            # What a Celery task message carries: the request as JSON.
            request = dispatch.to_request(dispatch.job_id, {}).model_dump(
                mode="json", exclude_defaults=True
            )
            payload = json.loads(json.dumps(request))
            self._pool(dispatch.node.route).submit(self._execute, dispatch.run_id, payload)
        return []

    def _pool(self, route: Route) -> cf.ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(route.queue)
            if pool is None:
                pool = self._pools[route.queue] = cf.ThreadPoolExecutor(
                    max_workers=1 if route.gpu else self.threads,
                    thread_name_prefix=f"segue-worker-{route.queue}",
                )
            return pool

    def _execute(self, run_id: str, payload: dict[str, Any]) -> None:
        try:
            execute(self.runtime, payload)
        except Exception:  # a Celery worker logs a failed task the same way; it is acked
            log.exception("the task of run %s failed", run_id)

    def _run_local(self, dispatch: Dispatch) -> None:
        self.on_results([self.runner.run(dispatch)])

    def close(self, wait: bool = True) -> None:
        """Stop taking runs; with ``wait``, let the running ones finish first."""
        with self._lock:
            pools = [self._local, *self._pools.values()]
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)
