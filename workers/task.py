"""The task that runs one node run on a worker.

It claims the run in SQL. A delivery that may have run before (redelivered by
the broker, or sent again by the coordinator) is claimed before it runs: if
the run finished already it is acknowledged and skipped, and its recorded
result is sent to the coordinator again, in case the first report was lost. A
first delivery's claim is written only if the run is still going after
``claim_after_s`` (:mod:`workers.claims`). The node runs with the same runner
as embedded mode; the task records the result (the first completion wins) and
reports it.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.runtime.messages import CURSOR_KEY, ErrorInfo, RunRequest, RunResult
from orchestrator.runtime.states import RunStatus
from orchestrator.scheduler.events import RunFinished
from orchestrator.store.base import RunRecord
from workers.claims import Claim
from workers.runtime import WorkerRuntime


def execute(rt: WorkerRuntime, payload: dict[str, Any], redelivered: bool = False) -> str:
    """Run one node run described by a JSON ``RunRequest``; returns what happened.

    ``redelivered``: the broker delivered this task before (its worker died, or
    the visibility timeout passed), so the run may have finished already.
    """
    request = RunRequest.model_validate(payload)
    producing = request.kind == "produce"
    pending: Claim | None = None
    if not producing:
        claim = _record(request, RunStatus.RUNNING.value, rt.name, started_at=time.time())
        if redelivered or request.resent or rt.claims is None:
            if not rt.store.claim_run(claim):
                return _already_done(rt, request)  # it finished before: skip it
        else:
            pending = rt.claims.later(claim)  # written if the run is still going then
    else:
        stored = rt.store.get_run(request.run_id)
        if stored is not None and stored.attempt == request.attempt and stored.status in _DONE:
            return _already_done(rt, request)  # it yielded its item already: report that
    # A producer's call is recorded only when it yields an item: asking an empty
    # queue or an exhausted range is not an iteration. Asking again with the same
    # cursor yields the same item, so a redelivered produce needs no claim.
    try:
        finished = rt.runner.run(request)
    finally:
        if pending is not None:
            pending.settle()  # no claim may land after the end below
    if producing and (finished.exhausted or finished.idle):
        rt.channels.publish_result(_result(finished).model_dump(mode="json"))
        return "exhausted" if finished.exhausted else "idle"
    status = _status(request, finished)
    outputs = finished.outputs if finished.status != "failed" else None
    if producing and outputs is not None:
        outputs = {**outputs, CURSOR_KEY: finished.cursor}  # so a re-report can resume
    final = _record(
        request,
        status,
        rt.name,
        started_at=finished.started_at,
        finished_at=finished.finished_at,
        outputs=outputs,
        error=finished.error,
    )
    if not rt.store.complete_run(final) and not producing:
        return _already_done(rt, request)
    # A producer asked again (after a coordinator took its job over) yields the
    # same item for the same cursor: its fresh result, cursor included, is sent.
    rt.channels.publish_result(_result(finished).model_dump(mode="json"))
    return status


_DONE = frozenset({"succeeded", "cached", "failed"})


def _status(request: RunRequest, finished: RunFinished) -> str:
    if finished.status == "cached":
        return RunStatus.CACHED.value
    if finished.status != "failed":
        return RunStatus.SUCCEEDED.value
    if finished.retryable and request.attempt < request.attempts:
        return RunStatus.RETRYING.value  # the coordinator schedules the next attempt
    return RunStatus.FAILED.value


def _already_done(rt: WorkerRuntime, request: RunRequest) -> str:
    stored = rt.store.get_run(request.run_id)
    if stored is None or stored.attempt != request.attempt or not RunStatus(stored.status).terminal:
        return "skipped: a newer attempt owns this run"
    status = stored.status if stored.status in ("succeeded", "cached") else "failed"
    error = ErrorInfo(type="Recorded", message=stored.error or "", retryable=False)
    outputs = dict(stored.outputs or {})
    cursor = outputs.pop(CURSOR_KEY, None)
    rt.channels.publish_result(
        RunResult(
            run_id=stored.run_id,
            attempt=stored.attempt,
            status=status,
            outputs=outputs,
            cursor=cursor,
            error=error if status == "failed" else None,
            started_at=stored.started_at,
            finished_at=stored.finished_at,
            worker=stored.worker,
        ).model_dump(mode="json")
    )
    return "duplicate: already finished, result sent again"


def _record(request: RunRequest, status: str, worker: str, **fields: Any) -> RunRecord:
    return RunRecord(
        run_id=request.run_id,
        job_id=request.job_id,
        loop=request.loop,
        iteration=request.iteration,
        node_id=request.node_id,
        type_name=request.type_name,
        status=status,
        attempt=request.attempt,
        queue=request.queue,
        worker=worker,
        **fields,
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
