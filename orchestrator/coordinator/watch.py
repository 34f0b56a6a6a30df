"""The coordinator's liveness: it announces itself, and chases runs no live worker holds.

Every ``heartbeat_interval_s`` the coordinator reads every process's latest
heartbeat and the runs its driver awaits, asks :func:`lost_runs` which of them
no live worker will report, and hands those to the driver, which answers them
from the store or sends them again (journaled, so a takeover replays it).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from orchestrator.coordinator.prefetch import Prefetch, Waiting
from orchestrator.driver import Driver
from orchestrator.liveness import ALIVE, Announcer, Flight, Holding, alive, lost_runs
from orchestrator.scheduler import Scheduler
from orchestrator.settings import Settings
from orchestrator.store import Store

log = logging.getLogger("segue.coordinator")
FORGET_AFTER_S = 3600.0
"""Heartbeat rows of processes silent this long are deleted."""


def _awaited(scheduler: Scheduler) -> list[Flight]:
    job_id = scheduler.state.job_id
    return [
        Flight(job_id, run_id, node.route.queue, sent)
        for run_id, node, sent in scheduler.awaited()
        if not node.role.queue  # queue nodes run in the coordinator itself
    ]


class Watch:
    """Announces a coordinator and chases the runs dead workers took with them.

    Args:
        driver: The coordinator's driver.
        store: Where heartbeats are.
        name: The coordinator's name (its leases' owner).
        settings: ``heartbeat_interval_s``, ``worker_timeout_s``, ``heartbeat_path``.
        waiting: Reads the task ids waiting in a worker queue, to find runs a dead
            worker took before it announced them (see :mod:`.prefetch`).
        catch_up: Delivers the results already on the broker to the driver. Called
            after the heartbeats are read and before the awaited runs are: a run a
            worker finished before its last beat is then no longer awaited, however
            far behind the coordinator's reading of results is.
    """

    def __init__(
        self,
        driver: Driver,
        store: Store,
        name: str,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        waiting: Waiting | None = None,
        catch_up: Callable[[], object] | None = None,
    ) -> None:
        self.driver = driver
        self.catch_up = catch_up
        self.store = store
        self.settings = settings
        self.clock = clock
        self.announcer = Announcer(
            store,
            name,
            "coordinator",
            lambda: Holding(holds=tuple(driver.driving())),
            settings.heartbeat_interval_s,
            settings.heartbeat_path,
            clock,
        )
        self._next_forget = 0.0
        self.prefetch = (
            Prefetch(waiting, settings.heartbeat_interval_s, settings.worker_timeout_s)
            if waiting is not None
            else None
        )

    def start(self) -> None:
        """Announce now and on a thread from now on."""
        self.announcer.start()

    def stop(self) -> None:
        """Announce the coordinator stopped."""
        self.announcer.stop()

    def check(self) -> int:
        """Chase the runs no live worker will report; returns how many."""
        now = self.clock()
        processes = self.store.list_processes()
        for process in processes:
            # Found dead here, dead for claims too: a run sent again is claimed at
            # once, not once the dead holder's heartbeat is worker_timeout_s old.
            if process.state == ALIVE and not alive(process, now, self.settings.worker_timeout_s):
                self.store.bury(process)
        if self.catch_up is not None:
            self.catch_up()
        awaited = [f for flights in self.driver.inspect(_awaited).values() for f in flights]
        lost = lost_runs(
            awaited,
            processes,
            now,
            self.settings.worker_timeout_s,
            slack_s=self.settings.heartbeat_interval_s / 2,
        )
        if self.prefetch is not None:
            chased = {item.flight.run_id for item in lost}
            rest = [f for f in awaited if f.run_id not in chased]
            lost += self.prefetch.lost(rest, processes, now)
        by_job: dict[tuple[str, str], set[str]] = defaultdict(set)
        for flight, reason in lost:
            by_job[(flight.job_id, reason)].add(flight.run_id)
        for (job_id, reason), run_ids in by_job.items():
            self.driver.chase(job_id, frozenset(run_ids), reason)
        if now >= self._next_forget:
            self.store.forget_processes(now - FORGET_AFTER_S)
            self._next_forget = now + 60.0
        return len(lost)
