"""A job's events as server-sent events, resumable from the event sequence.

Each event goes out with ``id: <seq>`` (its place in the job's event log), so
a browser that reconnects sends ``Last-Event-ID`` and gets only what it has
not seen. After the job's final event, or once an ended job has nothing more,
an ``end`` event tells the page to stop listening.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import anyio
from anyio import to_thread

from orchestrator.driver.journal import INPUT_KIND
from orchestrator.states import JobStatus
from orchestrator.store.base import Store
from orchestrator.views import JobEvent

BATCH = 500
KEEPALIVE_S = 15.0


def resume_from(headers: Mapping[str, str], query: Mapping[str, str]) -> int:
    """The sequence number to resume after: ``Last-Event-ID``, else ``?after=``, else 0."""
    for raw in (headers.get("last-event-id"), query.get("after")):
        if raw is not None and raw.strip().isdigit():
            return int(raw.strip())
    return 0


def frame(event: JobEvent) -> str:
    """One event as an SSE frame."""
    data = json.dumps(event.model_dump(mode="json"), separators=(",", ":"), default=str)
    return f"id: {event.seq}\nevent: job\ndata: {data}\n\n"


END = "event: end\ndata: {}\n\n"


async def job_events(
    store: Store, job_id: str, after: int, poll_s: float = 0.25
) -> AsyncIterator[str]:
    """SSE frames of the job's events after ``after``, live until the job ends."""
    idle = 0.0
    yield "retry: 2000\n\n"
    while True:
        batch = await to_thread.run_sync(store.read_events, job_id, after, BATCH)
        for record in batch:
            after = record.seq
            if record.kind == INPUT_KIND:
                continue  # the driver's journal, not an event for people
            event = JobEvent.of(record)
            yield frame(event)
            if event.final:
                yield END
                return
        if batch:
            idle = 0.0
            continue
        job = await to_thread.run_sync(lambda: store.get_job(job_id))
        if job is None or JobStatus(job.status).terminal:
            yield END
            return
        await anyio.sleep(poll_s)
        idle += poll_s
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"
