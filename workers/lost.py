"""A prefork child that dies running a node: its run fails, and the pool goes on.

Celery's prefork pool replaces a child that segfaults or is killed (the
out-of-memory killer, a stray ``kill -9``) and reports the task it held with
``WorkerLostError``, in the worker's main process. Left to Celery, a task with
``reject_on_worker_lost`` goes back to the broker and runs again at once - a
node that always crashes would crash child after child, forever. Instead the
main process reports the run as failed with :class:`ChildProcessDied`
(retryable: the job's retry policy decides whether it runs again, as a new
attempt) and acknowledges the message.

A worker that is shutting down, or that dies itself, keeps Celery's way: the
task goes back to the broker for another worker, as the shutdown or the
liveness watch expects (DESIGN section 10).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery.worker import state
from celery.worker.request import Request

from nodes.ids import RunId
from orchestrator.channels import Channels
from orchestrator.errors import ChildProcessDied
from orchestrator.messages import RunRequest
from orchestrator.results import RunError, RunResult
from orchestrator.settings import Settings
from workers.task import parse_request

log = logging.getLogger(__name__)

_lock = threading.Lock()
_channels: Channels | None = None
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Set the broker the main process reports lost runs on (called at start)."""
    global _settings
    _settings = settings


def lost_result(request: RunRequest, cause: str, worker: str | None) -> RunResult:
    """The failed result of a run whose pool child died: retryable, named."""
    died = ChildProcessDied(
        f"the worker process running node {request.node_id!r} ({request.type_name}) "
        f"died: {cause} - a crash or the out-of-memory killer; the run may be retried"
    )
    error = RunError(type(died).__name__, str(died), retryable=True)
    now = time.time()
    return RunResult(
        run_id=request.run_id,
        attempt=request.attempt,
        status="failed",
        error=error,
        finished_at=now,
        worker=worker,
    )


def _publish(job_id: str, result: RunResult) -> None:
    global _channels
    with _lock:
        if _channels is None:
            _channels = Channels((_settings or Settings()).broker_url)
        _channels.publish_result(job_id, result.to_json())


class NodeRequest(Request):  # type: ignore[misc]
    """A node task's request: a lost pool child fails its run instead of requeueing it."""

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> Any:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if not isinstance(exc, WorkerLostError) or state.should_stop or state.should_terminate:
            return super().on_failure(exc_info, send_failed_event, return_ok)
        request = parse_request(tuple(self.args), dict(self.kwargs))
        if isinstance(request, str):
            return super().on_failure(exc_info, send_failed_event, return_ok)
        result = lost_result(request, str(exc), self.hostname)
        try:
            _publish(RunId.job_of(request.run_id), result)
        except Exception:  # the broker is away: Celery's way, the task runs again
            log.exception("could not report run %s, whose child died", request.run_id)
            return super().on_failure(exc_info, send_failed_event, return_ok)
        log.error("run %s failed: %s", request.run_id, result.error)
        state.task_ready(self)
        self.acknowledge()
        if send_failed_event:
            self.send_event("task-failed", exception=repr(exc), traceback="")
        return None
