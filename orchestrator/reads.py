"""Reading a job from the store: how every client sees a job it does not drive itself.

The store is the source of truth; a cluster client reads only through this,
and an embedded engine does for jobs driven by another process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from orchestrator.driver.journal import INPUT_KIND
from orchestrator.errors import JobWaitTimeout, UnknownJobError
from orchestrator.logs import read_logs
from orchestrator.states import JobStatus
from orchestrator.store.base import JobRecord, Store
from orchestrator.views import JobEvent, JobResult, LogLine, LogQuery, LoopInfo, RunInfo

POLL_S = 0.05


class StoreReader:
    """Job results, events, loops and runs as the store holds them."""

    def __init__(self, store: Store, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s

    def job(self, job_id: str) -> JobRecord:
        """The job's record; raises :class:`UnknownJobError`."""
        record = self.store.get_job(job_id)
        if record is None:
            raise UnknownJobError(job_id)
        return record

    def result(self, job_id: str) -> JobResult | None:
        """How the job ended, or ``None`` while it has not."""
        record = self.job(job_id)
        if not JobStatus(record.status).terminal:
            return None
        return JobResult(
            job=job_id,
            status=record.status,
            outputs=dict(record.outputs),
            error=record.error,
            loops={info.name: info for info in self.loops(job_id)},
        )

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Poll the store until the job ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (result := self.result(job_id)) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise JobWaitTimeout(job_id, timeout)
            time.sleep(self.poll_s)
        return result

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        """The job's stored events from its start, then as they are stored, until it ends.

        The job is looked up now, so an unknown job fails here, not at the first ``next``.
        """
        self.job(job_id)
        return self._events(job_id, timeout)

    def _events(self, job_id: str, timeout: float | None) -> Iterator[JobEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        after = 0
        while True:
            batch = self.store.read_events(job_id, after=after, limit=1000)
            for record in batch:
                after = record.seq
                if record.kind == INPUT_KIND:
                    continue  # the driver's journal, not an event for people
                event = JobEvent.of(record)
                yield event
                if event.final:
                    return
            if not batch:
                if deadline is not None and time.monotonic() > deadline:
                    raise JobWaitTimeout(job_id, timeout, "sent no event")
                time.sleep(self.poll_s)

    def loops(self, job_id: str) -> list[LoopInfo]:
        """The job's loops as recorded."""
        records = self.store.list_loops(job_id)
        if not records:
            self.job(job_id)
        return [LoopInfo.of(r) for r in records]

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded."""
        records = self.store.list_runs(job_id, loop)
        if not records:
            self.job(job_id)
        return [RunInfo.of(r) for r in records]

    def logs(self, query: LogQuery) -> list[LogLine]:
        """The job's run logs and tracebacks (:func:`orchestrator.logs.read_logs`)."""
        return read_logs(self.store, query)
