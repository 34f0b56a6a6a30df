"""Liveness, not timeouts (DESIGN section 3, item 12).

Every worker process, prefork child, coordinator and embedded engine
announces itself every ``heartbeat_interval_s`` with what it holds
(:class:`Announcer`, one row per process in the store). One silent for
``worker_timeout_s``, or stopped, is dead. A coordinator compares what it
dispatched with what live workers hold (:func:`lost_runs`) and sends the lost
runs again at once, whatever their node's length; the broker's visibility
timeout is only a backstop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from orchestrator.heartbeat import beat
from orchestrator.store.base import ProcessRecord, Store

log = logging.getLogger("segue.liveness")
HEARTBEAT_INTERVAL_S = 2.0
"""Default seconds between two heartbeats of a process."""
WORKER_TIMEOUT_S = 15.0
"""Default silence after which a process is dead."""
ALIVE = "alive"
STOPPED = "stopped"
DEAD = "dead"
"""A process a coordinator found dead (silent, or gone from its host): no claim
waits on it any longer."""


def process_name(kind: str) -> str:
    """A process's name in heartbeats, leases and claims: ``kind-nonce@host:pid``.

    The nonce makes it unique per start: a restarted container keeps its
    hostname and often its pid (1), but never its name."""
    return f"{kind}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}:{os.getpid()}"


def gone_locally(name: str | None) -> bool:
    """Whether ``name`` (see :func:`process_name`) is a process of this host that no
    longer exists: known dead at once, without waiting for its heartbeats to stop."""
    if not name or "@" not in name:
        return False
    host, _, pid = name.rpartition("@")[2].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process: alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def alive(process: ProcessRecord, now: float, timeout_s: float) -> bool:
    """Whether a process counts as alive at ``now``: announced ``alive``, heard
    within ``timeout_s``, and not a dead process of this host."""
    return (
        process.state == ALIVE
        and now - process.beat_at <= timeout_s
        and not gone_locally(process.name)
    )


@dataclass
class Holding:
    """What a process holds at one heartbeat (see :class:`ProcessRecord`)."""

    holds: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    info: dict[str, object] = field(default_factory=dict)
    active_at: float | None = None
    """When the process last took a run, if it knows: a worker that took and
    finished runs between two beats, holding nothing at either, was not idle."""


class Announcer:
    """Writes a process's heartbeat every ``interval_s`` on a thread of its own.

    Args:
        store: Where heartbeats go.
        name: The process's name (:func:`process_name`).
        kind: ``worker``, ``coordinator`` or ``engine``.
        holding: What the process holds now; called at every beat.
        interval_s: Seconds between beats.
        path: A file touched at every beat too, for probes that read its age.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        kind: str,
        holding: Callable[[], Holding],
        interval_s: float,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.name = name
        self.kind = kind
        self.holding = holding
        self.interval_s = interval_s
        self.path = path
        self.clock = clock
        self.started_at = clock()
        self._idle_since: float | None = self.started_at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> Announcer:
        """Announce now, then every ``interval_s`` until :meth:`stop`."""
        self.beat()
        self._thread = threading.Thread(target=self._serve, name="segue-heartbeat", daemon=True)
        self._thread.start()
        return self

    def beat(self, state: str = ALIVE) -> None:
        """Announce once. A store that cannot be reached is logged once, not per beat."""
        now = self.clock()
        held = self.holding()
        if held.holds:
            self._idle_since = None
        else:
            if self._idle_since is None:
                self._idle_since = now
            if held.active_at is not None and held.active_at > self._idle_since:
                self._idle_since = min(held.active_at, now)
        record = ProcessRecord(
            name=self.name,
            kind=self.kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            beat_at=now,
            holds=held.holds,
            queues=held.queues,
            idle_since=self._idle_since,
            state=state,
            info=dict(held.info),  # type: ignore[arg-type]
        )
        if self.path is not None and state == ALIVE:
            try:  # first: a store that is away must not make a probe kill us
                beat(self.path)
            except OSError as exc:
                log.warning("%s cannot write its heartbeat file %s (%s)", self.name, self.path, exc)
        try:
            self.store.announce(record)
        except Exception as exc:
            if not self._failing:
                log.warning("%s cannot announce itself (%s); trying at every beat", self.name, exc)
            self._failing = True
        else:
            if self._failing:
                log.info("%s announces itself again", self.name)
            self._failing = False

    def stop(self) -> None:
        """Stop beating and announce the process stopped, with what it still holds
        (a coordinator sends those runs again at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.beat(STOPPED)

    def _serve(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


class Flight(NamedTuple):
    """A run a driver dispatched to a worker queue and has not heard back from."""

    job_id: str
    run_id: str
    queue: str
    dispatched_at: float


class Lost(NamedTuple):
    """A run to send again, and why."""

    flight: Flight
    reason: str


def lost_runs(
    flights: Iterable[Flight],
    processes: Iterable[ProcessRecord],
    now: float,
    timeout_s: float,
    slack_s: float,
) -> list[Lost]:
    """The dispatched runs no live worker will report.

    A run is lost when

    - a dead worker held it, and took it after it was last sent (a worker that
      died holding an older delivery does not make the new one lost); or
    - no live process holds it, while a live worker consuming its queue has
      been idle for ``slack_s`` since the run was sent (it would have taken the
      run from the queue) and every live consumer of the queue has announced
      itself ``slack_s`` after the send (so a worker that took the run has
      said so). This finds runs lost in a dead worker's prefetch buffer before
      it announced them, or between the broker's pop and its bookkeeping,
      without touching runs still waiting in a busy queue.
    """
    live: list[ProcessRecord] = []
    dead_holder: dict[str, ProcessRecord] = {}
    for process in processes:
        if alive(process, now, timeout_s):
            live.append(process)
        elif process.kind == "worker":
            for run_id in process.holds:
                dead_holder[run_id] = process
    held = {run_id for process in live for run_id in process.holds}
    out: list[Lost] = []
    for flight in flights:
        holder = dead_holder.get(flight.run_id)
        if flight.run_id in held:
            continue
        if holder is not None and flight.dispatched_at <= holder.beat_at:
            out.append(Lost(flight, f"its worker {holder.name} is gone"))
            continue
        consumers = [p for p in live if p.kind == "worker" and flight.queue in p.queues]
        if not consumers or any(p.beat_at < flight.dispatched_at + slack_s for p in consumers):
            continue
        idle = next(
            (
                p
                for p in consumers
                if p.idle_since is not None
                and p.beat_at - max(p.idle_since, flight.dispatched_at) >= slack_s
            ),
            None,
        )
        if idle is not None:
            out.append(Lost(flight, f"no worker holds it while {idle.name} idles on its queue"))
    return out
