"""Claims written only for runs that outlast a short delay.

A node run's row goes ``running`` when a worker claims it. Asking the store
before every run costs a round trip and a write, and most node runs are done
in milliseconds - long before anyone could see them running. So a worker
takes a first delivery's claim *later*: it registers the claim, runs the node,
and a background thread writes the claim only if the run is still going after
``delay_s``. A run done sooner goes from ``queued`` to its end in one write
(the completion, conditional as ever: the first one wins).

A delivery that may have run before - redelivered by the broker, or sent again
by the coordinator - is claimed before it runs, so a finished run is skipped.

A claim never lands after its run's end: :meth:`DelayedClaims.settle` cancels
a claim not yet written, or waits for one being written, before the worker
records the end.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from enum import Enum

from nodes.errors import SegueError
from orchestrator.store import Store
from orchestrator.store.base import RunRecord

log = logging.getLogger("segue.worker")


class _State(Enum):
    PENDING = "pending"
    CANCELLED = "cancelled"
    WRITING = "writing"
    WRITTEN = "written"


class Claim:
    """A claim waiting for its delay; settle it when the run ends."""

    __slots__ = ("owner", "record", "state")

    def __init__(self, owner: DelayedClaims, record: RunRecord) -> None:
        self.owner = owner
        self.record = record
        self.state = _State.PENDING

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
        self._heap: list[tuple[float, int, Claim]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def later(self, record: RunRecord) -> Claim:
        """Register a claim, written if it is not settled within ``delay_s``."""
        claim = Claim(self, record)
        due = time.monotonic() + self.delay_s
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="segue-claims", daemon=True
                )
                self._thread.start()
            earliest = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, next(self._order), claim))
            if earliest:
                self._changed.notify_all()
        return claim

    def settle(self, claim: Claim) -> None:
        """The run ended: drop its claim, or wait until the one being written is."""
        with self._changed:
            if claim.state is _State.PENDING:
                claim.state = _State.CANCELLED
                return
            while claim.state is _State.WRITING:
                self._changed.wait()

    def close(self) -> None:
        """Stop the thread; claims not yet due are dropped (their runs' ends will come)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            with self._changed:
                claim = self._next_due()
                if claim is None:
                    return
                claim.state = _State.WRITING
            try:
                self.store.claim_run(claim.record)
            except SegueError as exc:  # the run's end is still recorded when it comes
                log.warning("could not record run %s as running: %s", claim.record.run_id, exc)
            finally:
                with self._changed:
                    claim.state = _State.WRITTEN
                    self._changed.notify_all()

    def _next_due(self) -> Claim | None:
        """The next claim to write, waiting until one is due; None once closed."""
        while not self._closed:
            while self._heap and self._heap[0][2].state is not _State.PENDING:
                heapq.heappop(self._heap)  # settled before it was due
            if not self._heap:
                self._changed.wait()
                continue
            due, _, claim = self._heap[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._changed.wait(wait)
                continue
            heapq.heappop(self._heap)
            return claim
        return None
