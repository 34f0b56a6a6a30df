"""A worker's heartbeats (DESIGN section 3, item 12).

The worker process announces, every ``heartbeat_interval_s``, the runs it
holds: every task it received and has not finished, prefetched ones included
(Celery's reserved requests). A prefork child announces itself too, with the
run it is executing: its claims carry its own name, so a child that dies
frees its runs for another claim once it falls silent. The worker's beats
go on until its pool has finished (``worker_shutdown``); then it announces
itself stopped with what it still held, and the coordinator sends those again
at once. The heartbeat file for probes is touched at every beat. A GPU worker
process announces its device too: index, name, total, free and usable memory,
how many runs it ran and the last one's peak (``info["gpu"]``).
"""

from __future__ import annotations

import time
from typing import Any

from celery import bootsteps
from celery.signals import worker_process_shutdown, worker_shutdown
from celery.worker import state as worker_state

from orchestrator.liveness import Announcer, Holding
from workers import runtime as runtimes
from workers.gpu import serving

_announcers: list[Announcer] = []


def _received() -> tuple[str, ...]:
    for _ in range(5):  # the consumer thread changes the set while it is read
        try:
            return tuple(request.id for request in list(worker_state.reserved_requests))
        except RuntimeError:
            continue
    return tuple(request.id for request in list(worker_state.reserved_requests))


class _Activity:
    """Whether the worker accepted a task since the last beat (Celery counts every
    task it starts, in every pool): then it was busy at some point up to now."""

    def __init__(self) -> None:
        self._seen = worker_state.all_total_count[0]

    def active_at(self) -> float | None:
        count = worker_state.all_total_count[0]
        if count == self._seen:
            return None
        self._seen = count
        return time.time()


class Liveness(bootsteps.StartStopStep):  # type: ignore[misc]
    """Announces the worker process with the runs it holds, from start to shutdown."""

    requires = {"celery.worker.components:Pool"}

    def start(self, worker: Any) -> None:
        rt = runtimes.runtime(worker.hostname)
        settings = rt.settings
        queues = tuple(worker.app.amqp.queues.consume_from or ())
        info = {
            "hostname": worker.hostname,
            "pool": type(worker.pool).__module__.rsplit(".", 1)[-1],
            "concurrency": worker.concurrency,
        }
        activity = _Activity()
        gpu = serving.current()
        announcer = Announcer(
            rt.store,
            rt.name,
            "worker",
            lambda: Holding(
                holds=_received(),
                queues=queues,
                info=info if gpu is None else {**info, "gpu": gpu.announce()},
                active_at=activity.active_at(),
            ),
            settings.heartbeat_interval_s,
            settings.heartbeat_path,
        )
        _announcers.append(announcer.start())


def announce_child() -> None:
    """In a prefork child: announce it with the runs it executes."""
    rt = runtimes.runtime()
    announcer = Announcer(
        rt.store,
        rt.name,
        "worker",
        lambda: Holding(holds=tuple(rt.executing), info={"child": True}),
        rt.settings.heartbeat_interval_s,
    )
    _announcers.append(announcer.start())


def _stopped(**_: Any) -> None:
    while _announcers:
        _announcers.pop().stop()


worker_shutdown.connect(_stopped, weak=False)
worker_process_shutdown.connect(_stopped, weak=False)
