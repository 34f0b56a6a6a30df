"""Which queue a GPU run is sent to, from what live workers announce (DESIGN section 7).

A GPU worker process consumes its queues (``gpu``) and, for each, the queue of
its own memory, ``gpu.<usable>mb`` (:func:`fit_queue`). The coordinator sends
a GPU run that declares ``vram_mb``:

* to ``gpu`` when every live worker serving that queue can fit it (or one
  serves it on the CPU, or without announcing a device: it takes any run);
* else to the memory queue of the smallest live GPU that fits it (best fit),
  so it never reaches a GPU too small for it, and never bounces between them;
* else nowhere yet: the coordinator holds it, asks again every second, and
  sends it as soon as a GPU worker that fits it announces itself. Meanwhile
  the node's health says what it needs and what the largest live GPU offers.

The decision is pure (:func:`place`); :class:`GpuPlacement` reads the
heartbeats, at most once per ``max_age_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nodes.errors import SegueError
from orchestrator.liveness import alive
from orchestrator.store.base import ProcessRecord

log = logging.getLogger("segue.coordinator")

READ_EVERY_S = 1.0
"""How old the heartbeats a placement decides on may be."""


@dataclass(frozen=True)
class Offer:
    """What one live worker process takes.

    Attributes:
        queues: The queues it consumes.
        usable_mb: The memory a run may declare on its GPU; None: any (a worker
            serving GPU queues on the CPU, or one announcing no device).
    """

    queues: frozenset[str]
    usable_mb: int | None


def fit_queue(queue: str, usable_mb: int) -> str:
    """The queue of the GPU workers serving ``queue`` whose device offers ``usable_mb``."""
    return f"{queue}.{usable_mb}mb"


def offers(processes: Iterable[ProcessRecord], now: float, timeout_s: float) -> list[Offer]:
    """What the live worker processes take, from their heartbeats."""
    found = []
    for process in processes:
        if process.kind != "worker" or not alive(process, now, timeout_s):
            continue
        gpu = process.info.get("gpu")
        usable = gpu.get("usable_mb") if isinstance(gpu, dict) else None
        found.append(
            Offer(frozenset(process.queues), int(usable) if isinstance(usable, int) else None)
        )
    return found


def place(queue: str, vram_mb: int, live: Sequence[Offer]) -> str | None:
    """The queue a GPU run routed to ``queue`` and declaring ``vram_mb`` is sent to;
    None while no live worker serving ``queue`` can fit it (the run is held)."""
    if vram_mb <= 0:
        return queue  # declares nothing: it takes a whole device, any device
    serving = [offer.usable_mb for offer in live if queue in offer.queues]
    if any(usable is None for usable in serving):
        return queue
    sizes = sorted({usable for usable in serving if usable is not None})
    fitting = [usable for usable in sizes if usable >= vram_mb]
    if not fitting:
        return None
    return queue if fitting[0] == sizes[0] else fit_queue(queue, fitting[0])


class GpuPlacement:
    """Places GPU runs from the heartbeats in the store.

    Args:
        processes: Lists every process's latest heartbeat (the store's ``list_processes``).
        timeout_s: Silence after which a worker counts as gone.
        clock: Seconds since the epoch.
        max_age_s: How old the heartbeats decided on may be.
    """

    def __init__(
        self,
        processes: Callable[[], list[ProcessRecord]],
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        max_age_s: float = READ_EVERY_S,
    ) -> None:
        self._processes = processes
        self._timeout_s = timeout_s
        self._clock = clock
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._live: list[Offer] = []

    def queue(self, queue: str, vram_mb: int) -> str | None:
        """Where the run goes now (:func:`place`); None: hold it."""
        if vram_mb <= 0:
            return queue
        return place(queue, vram_mb, self.live())

    def live(self) -> list[Offer]:
        """The live workers' offers, read again when older than ``max_age_s``."""
        now = self._clock()
        with self._lock:
            if now - self._read_at >= self._max_age_s:
                self._read_at = now
                try:
                    self._live = offers(self._processes(), now, self._timeout_s)
                except SegueError as exc:  # the store is away: decide on what was read last
                    log.warning("could not read the workers' heartbeats to place GPU runs: %s", exc)
            return self._live
