"""Requests clients write to the store: a loop's desired state, a job's cancel.

Every client (embedded or of a cluster) and the CLI accept and refuse the
same requests, here; whichever driver holds the job obeys them (its steward
reads them from the store).
"""

from __future__ import annotations

from nodes.context import MAIN
from orchestrator.errors import LoopEndedError, UnknownJobError, UnknownLoopError
from orchestrator.states import DesiredLoopState, LoopStatus
from orchestrator.store.base import LoopRecord, Store


def request_loop(store: Store, job_id: str, loop: str, desired: DesiredLoopState) -> LoopRecord:
    """Ask a loop to pause, resume (``running``) or stop; returns the loop as it was.

    Asking an ended loop to pause or stop changes nothing; asking for the state
    a loop is in or headed to is not an error.

    Raises:
        UnknownJobError: no such job.
        UnknownLoopError: the job has no such loop, or it is the main stage.
        LoopEndedError: an ended loop was asked to run again.
    """
    records = store.list_loops(job_id)
    if not records and store.get_job(job_id) is None:
        raise UnknownJobError(job_id)
    loops = {r.name: r for r in records if r.name != MAIN}
    record = loops.get(loop)
    if record is None:
        raise UnknownLoopError(job_id, loop, list(loops))
    if LoopStatus(record.status).terminal:
        if desired is DesiredLoopState.RUNNING:
            raise LoopEndedError(job_id, loop, record.status)
        return record
    store.request_loop(job_id, loop, desired.value)
    return record


def request_cancel(store: Store, job_id: str) -> None:
    """Ask for a job to be cancelled (a finished job stays as it ended).

    Raises:
        UnknownJobError: no such job.
    """
    if not store.request_cancel(job_id):
        raise UnknownJobError(job_id)
