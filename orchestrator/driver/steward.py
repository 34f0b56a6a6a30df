"""The control plane around a driver: leases on its jobs, and the requests the store holds.

Clients only write requests to the store (a submitted job, a loop's desired
state, a cancel). A steward, beside each driver (an embedded engine or a
coordinator), reads them for the jobs its driver holds and feeds them to it
as scheduler events, renews the driver's leases, lets go of jobs whose lease
another driver took, and adopts jobs whose driver is gone. So a loop paused
from another terminal pauses within a second, whoever drives its job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from nodes.context import MAIN
from nodes.errors import SegueError
from orchestrator.driver.driver import Driver
from orchestrator.liveness import alive, gone_locally, process_name
from orchestrator.scheduler import CancelJob, LoopControl
from orchestrator.states import DesiredLoopState, JobStatus, LoopStatus
from orchestrator.store.base import JobRecord, Store

log = logging.getLogger("segue.driver")
REQUESTS_EVERY_S = 0.5
"""How often the store is read for requests: a request is obeyed within a second."""
ORPHANS_EVERY_S = 5.0
"""How often an embedded engine looks for jobs whose driver is gone."""
SCAN_LIMIT = 1000
EMBEDDED = "engine"
"""The kind in an embedded engine's owner name."""


owner_name = process_name
"""A driver's name in job leases and heartbeats: ``kind-nonce@host:pid``."""


def embedded_owner(owner: str | None) -> bool:
    """Whether ``owner`` names an embedded engine (see :func:`owner_name`)."""
    return owner is not None and owner.startswith(f"{EMBEDDED}-")


def driven(record: JobRecord, now: float) -> bool:
    """Whether a live driver holds the job now: it has not ended, its lease runs and
    its driver's process exists."""
    return (
        not JobStatus(record.status).terminal
        and record.owner is not None
        and record.lease_until is not None
        and record.lease_until >= now
        and not gone_locally(record.owner)
    )


def orphaned(record: JobRecord, now: float) -> bool:
    """Whether the job was being driven and its driver is gone: the next engine or
    coordinator opening the store adopts it."""
    return (
        not JobStatus(record.status).terminal
        and record.owner is not None
        and not driven(record, now)
    )


class Steward:
    """Keeps a driver's leases and brings it the store's requests.

    Args:
        driver: The driver whose jobs are kept.
        store: Where leases and requests live.
        owner: The driver's name in leases (:func:`owner_name`).
        lease_s: How long a lease lasts unless renewed.
        adopt: Takes over a job found in the store; returns False if it is
            driven already. Raises ``SegueError`` if the job cannot run here.
        adopt_pending: Whether submitted jobs nobody holds are taken (a
            coordinator) or only jobs whose driver is gone (an embedded engine).
        clock: Seconds since the epoch.
        owner_timeout_s: A driver silent this long is gone (its heartbeats,
            :mod:`orchestrator.liveness`): its jobs are taken over without
            waiting for their leases to end.
    """

    def __init__(
        self,
        driver: Driver,
        store: Store,
        owner: str,
        lease_s: float,
        adopt: Callable[[JobRecord], bool],
        adopt_pending: bool,
        clock: Callable[[], float],
        owner_timeout_s: float | None = None,
    ) -> None:
        self.driver = driver
        self.owner_timeout_s = owner_timeout_s
        self._gone: set[str] = set()  # drivers found silent at the last scan
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self._adopt = adopt
        self.adopt_pending = adopt_pending
        self.clock = clock
        self._cancelled: set[str] = set()
        self._asked: dict[tuple[str, str], str] = {}  # (job, loop) -> desired fed last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # the embedded engine's thread ----------------------------------------------------
    def start(self) -> None:
        """Adopt what is orphaned now, then keep leases and read requests on a thread."""
        self.scan()
        self._thread = threading.Thread(target=self._serve, name="segue-steward", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        now = self.clock()
        next_orphans = now + ORPHANS_EVERY_S
        next_renew = now + self.lease_s / 3  # a lease is renewed well before it ends
        while not self._stop.wait(REQUESTS_EVERY_S):
            try:
                now = self.clock()
                if now >= next_renew:
                    self.renew()
                    next_renew = now + self.lease_s / 3
                if now >= next_orphans:
                    self.scan()
                    next_orphans = now + ORPHANS_EVERY_S
                else:
                    self.requests()
            except Exception:  # the store may be briefly unreachable: try at the next turn
                log.exception("reading requests and leases failed; trying again")

    def stop(self) -> None:
        """Stop the thread (leases are kept or released by :meth:`release`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # one pass -------------------------------------------------------------------------
    def lease(self, job_id: str) -> bool:
        """Take or extend this driver's lease of a job."""
        now = self.clock()
        return self.store.lease_job(job_id, self.owner, now + self.lease_s, now)

    def release(self, job_ids: list[str]) -> None:
        """End this driver's leases now, so the next driver takes the jobs at once."""
        now = self.clock()
        for job_id in job_ids:
            self.store.lease_job(job_id, self.owner, 0.0, now)

    def scan(self, job_id: str | None = None) -> None:
        """Adopt the jobs this driver may take, and apply their requests."""
        if job_id is not None:
            record = self.store.get_job(job_id)
            records = [] if record is None else [record]
        else:
            records = self.store.list_jobs(status=JobStatus.PENDING.value, limit=SCAN_LIMIT)
            records += self.store.list_jobs(status=JobStatus.RUNNING.value, limit=SCAN_LIMIT)
        driving = set(self.driver.driving())
        self._gone = self._silent_drivers()
        for record in records:
            if JobStatus(record.status).terminal:
                continue
            if record.id not in driving and not self._take(record):
                continue
            self._apply(record)

    def requests(self) -> None:
        """Apply the requests of the jobs this driver holds."""
        for job_id in self.driver.driving():
            record = self.store.get_job(job_id)
            if record is not None:
                self._apply(record)

    def renew(self) -> list[str]:
        """Extend this driver's leases; let go of (and return) jobs another driver took."""
        lost = []
        for job_id in self.driver.driving():
            if not self.lease(job_id):
                record = self.store.get_job(job_id)
                if record is not None and JobStatus(record.status).terminal:
                    continue  # it ended (recorded before its driver let go of it)
                log.warning("lost the lease of job %s to another driver", job_id)
                self.driver.drop(job_id)
                lost.append(job_id)
        return lost

    def _take(self, record: JobRecord) -> bool:
        """Lease and adopt a job that is not driven here, if it is ours to take."""
        now = self.clock()
        owner = record.owner
        if owner is None and not self.adopt_pending:
            return False  # a submitted job waits for a coordinator
        if owner is not None and (owner in self._gone or gone_locally(owner)):
            self.store.lease_job(record.id, owner, 0.0, now)  # its driver died: end its lease
        if not self.lease(record.id):
            return False  # another live driver holds it
        try:
            adopted = self._adopt(record)
        except SegueError as exc:
            log.error("job %s cannot run here: %s", record.id, exc)
            self.store.update_job(
                record.id, status=JobStatus.FAILED.value, at=self.clock(), error=str(exc)
            )
            return False
        if adopted:
            log.info("adopted job %s (%s)", record.id, record.workflow)
        return True

    def _silent_drivers(self) -> set[str]:
        """Drivers that announced themselves and are gone now (stopped or silent)."""
        timeout = self.owner_timeout_s
        if timeout is None:
            return set()
        now = self.clock()
        return {
            p.name
            for p in self.store.list_processes()
            if p.kind != "worker" and p.name != self.owner and not alive(p, now, timeout)
        }

    def _apply(self, record: JobRecord) -> None:
        """Feed the driver the job's requests it has not obeyed yet."""
        if record.cancel_requested and record.id not in self._cancelled:
            self._cancelled.add(record.id)
            self.driver.post(record.id, CancelJob())
        for loop in self.store.list_loops(record.id):
            if loop.name == MAIN or LoopStatus(loop.status).terminal:
                continue
            wanted = self.driver.desired(record.id, loop.name)
            key = (record.id, loop.name)
            if wanted is None or wanted == loop.desired:
                self._asked.pop(key, None)
            elif self._asked.get(key) != loop.desired:  # fed once, not at every turn
                self._asked[key] = loop.desired
                self.driver.post(record.id, LoopControl(loop.name, DesiredLoopState(loop.desired)))
