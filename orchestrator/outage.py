"""Riding out a lost connection to the broker or the database.

A service that loses its broker or database neither exits nor logs a traceback
per retry: it says once that the connection dropped, tries again with backoff,
and says once that it came back and how long it was away (:class:`Outage`).
What it could not send meanwhile is kept in order and sent when the
connection returns (:class:`Outbox`): a worker's run results, a coordinator's
task messages.

Backoff is a pure function of the tries so far (:func:`backoff`): the first
retry comes at once, then the wait doubles from :data:`FIRST_WAIT_S` up to
:data:`MAX_WAIT_S`, so a service notices a returned connection within two
seconds, whatever the outage's length.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from orchestrator.errors import BrokerUnavailable

T = TypeVar("T")

FIRST_WAIT_S = 0.1
"""The wait after the second failed try; it doubles per try."""
MAX_WAIT_S = 2.0
"""The longest wait between tries."""
KEEP_LIMIT_BYTES = 64 * 1024 * 1024
"""How much an :class:`Outbox` keeps (by the items' sizes) before it refuses more."""


def backoff(tries: int) -> float:
    """Seconds to wait before the next try after ``tries`` failed ones (0 after the first)."""
    if tries <= 1:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** (tries - 2))


class Outage:
    """Whether one connection (a broker, a database) is up, as the calls through it find it.

    The first failure after a success logs one warning; the first success after
    failures logs one line with how long the connection was away. Thread-safe:
    many threads may fail and succeed at once, the lines are logged once per outage.

    Args:
        what: Names the connection in the log lines (``the broker at redis://...``).
        log: Where the lines go.
        reason: An error as the log line shows it (its type and first line by default).
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        reason: Callable[[BaseException], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.log = log
        self.reason = reason or _reason
        self.clock = clock
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """Whether the last call through the connection failed."""
        return self._since is not None

    def down_for(self) -> float:
        """Seconds since the connection dropped (0 while it is up)."""
        since = self._since
        return 0.0 if since is None else self.clock() - since

    def failed(self, error: BaseException, doing: str = "") -> float:
        """A call failed with a transient ``error``; returns seconds since the connection
        dropped (logged when this is its first failure)."""
        with self._lock:
            now = self.clock()
            if self._since is None:
                self._since = now
                during = f" while {doing}" if doing else ""
                self.log.warning(
                    "lost %s%s (%s); retrying with backoff until it returns",
                    self.what,
                    during,
                    self.reason(error),
                )
            return now - self._since

    def ok(self) -> None:
        """A call went through (logged when the connection was down)."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is not None:
                self.log.warning("%s is back after %.1f s", self.what, self.clock() - self._since)
                self._since = None


def _reason(error: BaseException) -> str:
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0]}" if first else type(error).__name__


_watched: dict[str, Outage] = {}
_watched_lock = threading.Lock()


def watch(what: str, log: logging.Logger) -> Outage:
    """The :class:`Outage` of the connection named ``what`` in this process: every user of
    one broker (or database) shares it, so an outage is logged once, not once per user."""
    with _watched_lock:
        found = _watched.get(what)
        if found is None:
            found = _watched[what] = Outage(what, log)
        return found


class Outbox(Generic[T]):
    """Items that could not be sent while the broker was away, sent in order once it is back.

    :meth:`send` sends an item at once; if the broker is away (``transient``
    says so of the error), or items are kept already (order is kept), the item
    is kept and a thread of the outbox sends it when the broker returns. What
    is kept is bounded: past ``limit`` (by ``size``) an item is refused with
    :class:`BrokerUnavailable`, and a warning says so once per outage.

    Args:
        send: Sends one item; raises while the broker is away.
        transient: Whether an error means the broker is away (any other reaches the
            caller of :meth:`send`, or is logged and the item dropped by the thread).
        outage: Logs the outage's start and end.
        describe: Names an item in log lines.
        size: An item's size, counted against ``limit``.
        limit: The most that is kept.
    """

    def __init__(
        self,
        send: Callable[[T], None],
        transient: Callable[[BaseException], bool],
        outage: Outage,
        *,
        describe: Callable[[T], str] = repr,
        size: Callable[[T], int] = lambda _: 1,
        limit: int = KEEP_LIMIT_BYTES,
    ) -> None:
        self._send = send
        self.transient = transient
        self.outage = outage
        self.describe = describe
        self.size = size
        self.limit = limit
        self._kept: deque[tuple[T, int]] = deque()
        self._kept_size = 0
        self._full_warned = False
        self._lock = threading.Lock()
        self._emptied = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def kept(self) -> int:
        """How many items wait for the broker."""
        return len(self._kept)

    def send(self, item: T) -> None:
        """Send ``item`` now, or keep it to send once the broker is back.

        Raises:
            BrokerUnavailable: The broker is away and the outbox is full.
            Exception: A non-transient error of the first try.
        """
        with self._lock:
            if self._kept:  # others wait already: keep the order
                self._keep(item)
                return
        try:
            self._send(item)
        except Exception as exc:
            if not self.transient(exc):
                raise
            self.outage.failed(exc, f"sending {self.describe(item)}")
            with self._lock:
                self._keep(item)
            return
        self.outage.ok()

    def keep(self, items: list[T], error: BaseException | None = None, doing: str = "") -> None:
        """Keep ``items`` after those waiting already: they could not be sent (``error``),
        or others wait (``None``).

        Raises:
            BrokerUnavailable: The outbox is full (the items that fit are kept).
        """
        if error is not None:
            self.outage.failed(error, doing)
        with self._lock:
            for item in items:
                self._keep(item)

    def _keep(self, item: T) -> None:
        size = self.size(item)
        if self._kept_size + size > self.limit:
            if not self._full_warned:
                self._full_warned = True
                self.outage.log.warning(
                    "%d items wait for %s (%d bytes, the most kept); refusing more until it "
                    "returns",
                    len(self._kept),
                    self.outage.what,
                    self._kept_size,
                )
            raise BrokerUnavailable(
                f"{self.outage.what} is unreachable and {len(self._kept)} items wait for it "
                f"already ({self._kept_size} bytes, the most kept); {self.describe(item)} "
                "was not sent"
            )
        self._kept.append((item, size))
        self._kept_size += size
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="segue-outbox", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        tries = 1
        while not self._closed.wait(backoff(tries)):
            with self._lock:
                if not self._kept:
                    self._thread = None
                    self._full_warned = False
                    self._emptied.notify_all()
                    return
                item, size = self._kept[0]
            try:
                self._send(item)
            except Exception as exc:
                if self.transient(exc):
                    tries += 1
                    continue
                self.outage.log.error(
                    "dropped %s, which the broker refused: %s", self.describe(item), exc
                )
            else:
                self.outage.ok()
                tries = 1
            with self._lock:
                self._kept.popleft()
                self._kept_size -= size

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the kept items to go; returns how many are left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._kept and (left := deadline - time.monotonic()) > 0:
                self._emptied.wait(min(left, 0.5))
            return len(self._kept)

    def close(self, timeout: float) -> int:
        """Send what is kept, waiting up to ``timeout`` seconds, then stop the thread;
        returns how many items were never sent."""
        left = self.flush(timeout) if self._kept else 0
        self._closed.set()
        return left
