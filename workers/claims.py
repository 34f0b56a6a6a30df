"""Claims written only for runs that outlast a short delay.

A node run's row goes ``running`` when a worker claims it. Asking the store
before every run costs a round trip and a write, and most node runs are done
in milliseconds - long before anyone could see them running. So a worker
takes a first delivery's claim *later*: it registers the claim, runs the node,
and a background thread writes the claim only if the run is still going after
``delay_s``. A run done sooner is recorded once, by the coordinator, from its
result.

A delivery that may have run before - redelivered by the broker, or sent again
by the coordinator - is claimed before it runs, so a finished run is skipped.

A claim never lands after its run's end: :meth:`DelayedClaims.settle` cancels
a claim not yet written, or waits for one being written, before the worker
reports the end.

Registering and settling cost a dict insert and delete under a lock: the
thread looks at the oldest claims a few times per delay while any are
pending, and sleeps while none are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

from nodes.errors import SegueError
from orchestrator.inflight import in_flight_event
from orchestrator.store import Store
from orchestrator.store.base import RunRecord

log = logging.getLogger("segue.worker")
LOOKS_PER_DELAY = 4
"""How often per ``delay_s`` the thread looks for claims due: a claim is written
between ``delay_s`` and ``1.25 * delay_s`` after it was registered."""


class _State(Enum):
    PENDING = "pending"
    CANCELLED = "cancelled"
    WRITING = "writing"
    WRITTEN = "written"


class Claim:
    """A claim waiting for its delay; settle it when the run ends."""

    __slots__ = ("due", "owner", "record", "state", "written")

    def __init__(self, owner: DelayedClaims, record: Callable[[], RunRecord], due: float) -> None:
        self.owner = owner
        self.record = record
        self.due = due
        self.state = _State.PENDING
        self.written: threading.Event | None = None

    def settle(self) -> None:
        """The run ended: see :meth:`DelayedClaims.settle`."""
        self.owner.settle(self)


class DelayedClaims:
    """A thread that writes the claims of runs still going after ``delay_s``.

    Args:
        store: Where claims are written.
        delay_s: How long a run goes before it is recorded ``running``.
    """

    def __init__(self, store: Store, delay_s: float) -> None:
        self.store = store
        self.delay_s = delay_s
        self._pending: dict[int, Claim] = {}  # by registration order
        self._lock = threading.Lock()
        self._some = threading.Event()  # set while claims are pending
        self._thread: threading.Thread | None = None
        self._closed = False

    def later(self, record: Callable[[], RunRecord]) -> Claim:
        """Register a claim (``record`` builds it), written if it is not settled
        within ``delay_s``."""
        claim = Claim(self, record, time.monotonic() + self.delay_s)
        with self._lock:
            if not self._pending:
                self._some.set()
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name="segue-claims", daemon=True
                    )
                    self._thread.start()
            self._pending[id(claim)] = claim
        return claim

    def settle(self, claim: Claim) -> None:
        """The run ended: drop its claim, or wait until the one being written is."""
        with self._lock:
            if claim.state is _State.PENDING:
                claim.state = _State.CANCELLED
                del self._pending[id(claim)]
                return
            written = claim.written
        if written is not None:
            written.wait()

    def close(self) -> None:
        """Stop the thread; claims not yet due are dropped (their runs' ends will come)."""
        self._closed = True
        self._some.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        look = self.delay_s / LOOKS_PER_DELAY
        while not self._closed:
            self._some.wait()
            for claim in self._due():
                self._write(claim)
            time.sleep(look)

    def _due(self) -> list[Claim]:
        """Take the claims whose delay is over (the oldest come first)."""
        now = time.monotonic()
        due: list[Claim] = []
        with self._lock:
            for claim in self._pending.values():
                if claim.due > now:
                    break
                due.append(claim)
            for claim in due:
                del self._pending[id(claim)]
                claim.state = _State.WRITING
                claim.written = threading.Event()
            if not self._pending:
                self._some.clear()
        return due

    def _write(self, claim: Claim) -> None:
        record = claim.record()
        event = in_flight_event(record, record.started_at or time.time())  # shows it live
        try:
            self.store.claim_run(record, event=event)  # one transaction: ordered with queued
        except SegueError as exc:  # the run's end is still recorded when it comes
            log.warning("could not record run %s as running: %s", record.run_id, exc)
        finally:
            claim.state = _State.WRITTEN
            assert claim.written is not None
            claim.written.set()
