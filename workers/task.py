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
from collections.abc import Callable
from functools import partial
from typing import Any

from celery.exceptions import Reject
from pydantic import ValidationError

from nodes.errors import SegueError
from orchestrator.celery.placement import Offer, offers, place
from orchestrator.errors import BrokerUnavailable
from orchestrator.messages import RunRequest
from orchestrator.results import RunResult
from orchestrator.states import RunStatus
from orchestrator.store import StoreUnavailable
from orchestrator.store.base import RunRecord
from workers.claims import Claim
from workers.gpu import serving
from workers.runtime import WorkerRuntime

MISFIT_PAUSE_S = 1.0
"""How long a GPU worker holds a run too large for its device, that no live GPU fits,
before handing it back to the broker."""

Forward = Callable[[RunRequest, str], None]
"""Sends a run's task, unchanged, to another queue."""


def parse_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> RunRequest | str:
    """A node task's one argument as a ``RunRequest``, or why it is not one."""
    if len(args) + len(kwargs) != 1 or (kwargs and "request" not in kwargs):
        return f"a node task takes one argument, a RunRequest; got {len(args)} + {sorted(kwargs)}"
    payload = args[0] if args else kwargs["request"]
    try:
        return RunRequest.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "the request"
        return f"not a RunRequest ({where}: {error['msg']})"


def execute(
    rt: WorkerRuntime,
    payload: RunRequest | dict[str, Any],
    redelivered: bool = False,
    forward: Forward | None = None,
) -> str:
    """Run one node run described by a (JSON) ``RunRequest``; returns what happened.

    ``redelivered``: the broker delivered this task before (its worker died, or
    the visibility timeout passed), so the run may have finished already.
    ``forward``: how a GPU run too large for this device is sent on to a GPU that fits it.

    Raises:
        Reject: The store or the broker is unreachable: the task goes back to
            the broker (``requeue``), never acknowledged as a failure.
    """
    gpu = serving.current()
    if gpu is not None and isinstance(payload, RunRequest) and (misfit := gpu.misfit(payload)):
        return _misfit(rt, payload, misfit, gpu.plan.capacity_mb, forward)
    try:
        return _execute(rt, payload, redelivered)
    except (BrokerUnavailable, StoreUnavailable) as exc:
        raise Reject(_unreachable(payload, exc), requeue=True) from exc


def _misfit(
    rt: WorkerRuntime, request: RunRequest, misfit: str, offers_mb: int, forward: Forward | None
) -> str:
    """A run this GPU cannot fit (the coordinator sends such runs only to GPUs that
    fit them: it was sent before the one that fitted went away, or by another
    sender) goes on, unclaimed, to the memory queue of a live GPU that fits it.

    Raises:
        Reject: No live GPU fits it: back to the broker, after a pause that keeps
            a lone worker from taking it again at once.
    """
    queue = None
    if forward is not None:
        try:
            processes = rt.store.list_processes()
        except SegueError:
            processes = []
        own = Offer(frozenset({request.queue}), offers_mb)  # its heartbeat may not be out yet
        live = [*offers(processes, time.time(), rt.settings.worker_timeout_s), own]
        queue = place(request.queue, request.vram_mb, live)
    if queue is None or queue == request.queue or forward is None:
        time.sleep(MISFIT_PAUSE_S)
        raise Reject(misfit, requeue=True)
    forward(request, queue)
    return f"handed on to {queue}: {misfit}"


def _unreachable(payload: RunRequest | dict[str, Any], exc: SegueError) -> str:
    run_id = payload.run_id if isinstance(payload, RunRequest) else payload.get("run_id")
    return f"run {run_id} goes back to the broker: {exc}"


def _execute(rt: WorkerRuntime, payload: RunRequest | dict[str, Any], redelivered: bool) -> str:
    request = payload if isinstance(payload, RunRequest) else RunRequest.model_validate(payload)
    pending: Claim | None = None
    # A producer's call is not claimed: asking an empty queue or an exhausted
    # range is not an iteration, and asking again with the same cursor yields
    # the same item.
    if request.kind != "produce":
        claim = partial(_record, request, rt.name, time.time())
        if redelivered or request.resent or rt.claims is None:
            live_after = time.time() - rt.settings.worker_timeout_s
            if not rt.store.claim_run(claim(), live_after=live_after):
                return _already_done(rt, request)  # finished, or a live worker runs it
        else:
            pending = rt.claims.later(claim)  # written if the run is still going then
    rt.executing.add(request.run_id)
    try:
        try:
            gpu = serving.current() if request.gpu else None
            if gpu is None:
                finished = rt.runner.run(request)
            else:
                finished = gpu.run(request, rt.runner.run, rt.report)
        finally:
            if pending is not None:
                pending.settle()  # no claim may land after the coordinator records the end
        rt.channels.publish_result(request.job_id, finished.to_json())
    finally:
        rt.executing.discard(request.run_id)  # held until its result is out
    if finished.exhausted or finished.idle:
        return "exhausted" if finished.exhausted else "idle"
    return finished.status


def _already_done(rt: WorkerRuntime, request: RunRequest) -> str:
    stored = rt.store.get_run(request.run_id)
    if stored is not None and stored.attempt == request.attempt and stored.status == "running":
        return f"skipped: live worker {stored.worker} runs it"
    if stored is None or stored.attempt != request.attempt or not RunStatus(stored.status).terminal:
        return "skipped: a newer attempt owns this run"
    rt.channels.publish_result(request.job_id, RunResult.from_record(stored).to_json())
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
