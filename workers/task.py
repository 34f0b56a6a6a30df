"""The task that runs one node run on a worker.

A delivery that may have run before (redelivered by the broker, or sent again
by the coordinator) is claimed in SQL before it runs: if the store shows the
run finished, it is acknowledged and skipped, and its recorded result is sent
to the coordinator again, in case the first report was lost. A first
delivery's claim is written only if the run is still going after
``claim_after_s`` (:mod:`workers.claims`), so a run's ``running`` state shows
for runs long enough to watch. The node runs with the same runner as embedded
mode, and its result goes to the job's results queue, where it stays until the
coordinator has journaled it and recorded the run (the first completion wins).
The task is acknowledged to Celery only after that publish: a worker that dies
before it has the task delivered again.

While the broker is away the result waits in the outbox of the worker's
channels and the task ends as usual. When it cannot be kept (the outbox is
full), or the store cannot be reached to claim the run, the task is not
acknowledged as failed: it is rejected back to the broker, to run again
(DESIGN section 10).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from celery.exceptions import Reject

from nodes.errors import SegueError
from orchestrator.errors import BrokerUnavailable
from orchestrator.messages import ErrorInfo, RunRequest, RunResult
from orchestrator.scheduler.events import RunFinished
from orchestrator.states import RunStatus
from orchestrator.store import StoreUnavailable
from orchestrator.store.base import RunRecord
from workers.claims import Claim
from workers.runtime import WorkerRuntime


def execute(rt: WorkerRuntime, payload: dict[str, Any], redelivered: bool = False) -> str:
    """Run one node run described by a JSON ``RunRequest``; returns what happened.

    ``redelivered``: the broker delivered this task before (its worker died, or
    the visibility timeout passed), so the run may have finished already.

    Raises:
        Reject: The store or the broker is unreachable: the task goes back to
            the broker (``requeue``), never acknowledged as a failure.
    """
    try:
        return _execute(rt, payload, redelivered)
    except (BrokerUnavailable, StoreUnavailable) as exc:
        raise Reject(_unreachable(payload, exc), requeue=True) from exc


def _unreachable(payload: dict[str, Any], exc: SegueError) -> str:
    return f"run {payload.get('run_id')} goes back to the broker: {exc}"


def _execute(rt: WorkerRuntime, payload: dict[str, Any], redelivered: bool) -> str:
    request = RunRequest.model_validate(payload)
    pending: Claim | None = None
    # A producer's call is not claimed: asking an empty queue or an exhausted
    # range is not an iteration, and asking again with the same cursor yields
    # the same item.
    if request.kind != "produce":
        claim = partial(_record, request, rt.name, time.time())
        if redelivered or request.resent or rt.claims is None:
            if not rt.store.claim_run(claim()):
                return _already_done(rt, request)  # it finished before: skip it
        else:
            pending = rt.claims.later(claim)  # written if the run is still going then
    try:
        finished = rt.runner.run(request)
    finally:
        if pending is not None:
            pending.settle()  # no claim may land after the coordinator records the end
    rt.channels.publish_result(request.job_id, _result(finished).model_dump(mode="json"))
    if finished.exhausted or finished.idle:
        return "exhausted" if finished.exhausted else "idle"
    return finished.status


def _already_done(rt: WorkerRuntime, request: RunRequest) -> str:
    stored = rt.store.get_run(request.run_id)
    if stored is None or stored.attempt != request.attempt or not RunStatus(stored.status).terminal:
        return "skipped: a newer attempt owns this run"
    status = stored.status if stored.status in ("succeeded", "cached") else "failed"
    error = ErrorInfo(type="Recorded", message=stored.error or "", retryable=False)
    rt.channels.publish_result(
        request.job_id,
        RunResult(
            run_id=stored.run_id,
            attempt=stored.attempt,
            status=status,
            outputs=dict(stored.outputs or {}),
            error=error if status == "failed" else None,
            started_at=stored.started_at,
            finished_at=stored.finished_at,
            worker=stored.worker,
        ).model_dump(mode="json"),
    )
    return "duplicate: already finished, result sent again"


def _record(request: RunRequest, worker: str, started_at: float) -> RunRecord:
    return RunRecord(
        run_id=request.run_id,
        job_id=request.job_id,
        loop=request.loop,
        iteration=request.iteration,
        node_id=request.node_id,
        type_name=request.type_name,
        status=RunStatus.RUNNING.value,
        attempt=request.attempt,
        queue=request.queue,
        worker=worker,
        started_at=started_at,
    )


def _result(finished: RunFinished) -> RunResult:
    error = None
    if finished.error is not None:
        kind, _, message = finished.error.partition(": ")
        error = ErrorInfo(type=kind, message=message, retryable=finished.retryable)
    return RunResult(
        run_id=finished.run_id,
        attempt=finished.attempt,
        status=finished.status,
        outputs=finished.outputs or {},
        cursor=finished.cursor,
        exhausted=finished.exhausted,
        idle=finished.idle,
        delivery=finished.delivery,
        error=error,
        started_at=finished.started_at,
        finished_at=finished.finished_at,
        worker=finished.worker,
    )
