"""Runs a dead worker took off its queue before it said so (DESIGN section 3, item 12).

A worker announces what it holds every ``heartbeat_interval_s``; what it took
from the broker after its last beat dies with it unannounced. On a busy queue
:func:`~orchestrator.liveness.lost_runs` cannot tell such a run from one still
waiting behind the backlog, so it would only be chased once the queue drains.
With short nodes that is nearly every run a killed worker held: it took them
in its last fraction of a second.

:class:`Prefetch` asks the broker instead. When a worker consuming a run's
queue died after the run was sent, it reads which task ids still wait in that
queue (Redis: the queue's lists). A run that has left its queue was taken by
some worker: if every live consumer of the queue has announced itself since,
none holding it, and it is still not back in the queue, a dead worker took it.
On RabbitMQ the broker gives a dead consumer's unacknowledged tasks back at
once, so the probe answers ``None`` and nothing is chased here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from orchestrator.liveness import Flight, Lost, alive
from orchestrator.store.base import ProcessRecord

Waiting = Callable[[str], set[str] | None]
"""The task ids waiting in a Celery queue, or ``None`` when the broker cannot tell."""


class Prefetch:
    """Finds runs taken off their queue by a worker that died before announcing them.

    Args:
        waiting: Reads the task ids waiting in a queue (a task's id is its run id).
        interval_s: ``heartbeat_interval_s``: a worker silent this long after its
            last beat may have lived that long and taken runs meanwhile.
        timeout_s: ``worker_timeout_s``.
    """

    def __init__(self, waiting: Waiting, interval_s: float, timeout_s: float) -> None:
        self._waiting = waiting
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._absent: dict[str, float] = {}  # run id -> when it was first seen off its queue

    def lost(
        self, flights: Iterable[Flight], processes: Iterable[ProcessRecord], now: float
    ) -> list[Lost]:
        """The runs of ``flights`` (not already chased) that a dead worker took."""
        processes = list(processes)
        live = [p for p in processes if alive(p, now, self._timeout_s)]
        names = {p.name for p in live}
        dead = [p for p in processes if p.kind == "worker" and p.name not in names]
        held = {run_id for p in live for run_id in p.holds}
        slack = self._interval_s / 2
        suspects: dict[str, list[tuple[Flight, list[str]]]] = defaultdict(list)
        for flight in flights:
            if flight.run_id in held or now - flight.dispatched_at < slack:
                continue
            takers = [
                p.name
                for p in dead
                if flight.queue in p.queues
                and p.beat_at + self._interval_s + slack >= flight.dispatched_at
            ]
            if takers:
                suspects[flight.queue].append((flight, takers))
        seen = {flight.run_id for group in suspects.values() for flight, _ in group}
        self._absent = {r: at for r, at in self._absent.items() if r in seen}
        out: list[Lost] = []
        for queue, group in suspects.items():
            waiting = self._waiting(queue)
            if waiting is None:
                continue
            consumers = [p for p in live if p.kind == "worker" and queue in p.queues]
            for flight, takers in group:
                if flight.run_id in waiting:
                    self._absent.pop(flight.run_id, None)
                    continue
                since = self._absent.setdefault(flight.run_id, now)
                if consumers and all(p.beat_at >= since + slack for p in consumers):
                    del self._absent[flight.run_id]
                    died = ", ".join(takers)
                    reason = f"it left its queue, no live worker holds it ({died} died)"
                    out.append(Lost(flight, reason))
        return out
