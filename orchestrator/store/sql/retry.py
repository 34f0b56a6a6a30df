"""Retrying transient database errors, and turning database errors into store errors.

Only calls that are safe to repeat are retried on every transient error
(a dropped connection may have lost a commit, so repeating must not change the
outcome). Calls that are not (appending events, creating a job) are retried
only when the failed try is known to have written nothing: it never sent its
commit (a connection that died before or during the transaction's statements,
as when PostgreSQL restarts or its backends are terminated), or the error
guarantees it (SQLite's "database is locked", PostgreSQL's serialisation
failures and deadlocks). What a try sent is observed through SQLAlchemy's
engine events (:func:`_observe`).

A store that has reached its database rides out an outage: transient errors
are retried with backoff for up to ``patience_s`` (a PostgreSQL restart), and
the outage is logged once when it starts and once when it ends. A store that
never reached its database gives up after ``attempts`` tries: a wrong URL or a
database that is down fails fast.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from orchestrator.outage import Outage
from orchestrator.store.errors import StoreError, StoreUnavailable

T = TypeVar("T")

log = logging.getLogger("segue.store")
PATIENCE_S = 30.0
"""How long a store that reached its database retries transient errors."""

_NOTHING_WRITTEN_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
"""PostgreSQL: serialization_failure, deadlock_detected, lock_not_available."""


def is_transient(exc: BaseException) -> bool:
    """A dropped connection, a locked database, a failover: trying again may work."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def is_nothing_written(exc: BaseException) -> bool:
    """A transient error that guarantees the transaction wrote nothing."""
    if not isinstance(exc, OperationalError):
        return False
    if "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig):
        return True
    return getattr(exc.orig, "sqlstate", None) in _NOTHING_WRITTEN_SQLSTATES


class _Try:
    """What one try of a store call did on this thread, as SQLAlchemy's events saw it."""

    __slots__ = ("connect_failed", "sent", "started")

    def __init__(self) -> None:
        self.started = False  # it opened a transaction (or ran a statement)
        self.sent = False  # it sent a commit, or a statement that commits on its own
        self.connect_failed = False  # it failed to get a connection

    @property
    def wrote_nothing(self) -> bool:
        """Known to have written nothing (a try SQLAlchemy never saw is not known)."""
        return self.connect_failed or (self.started and not self.sent)


_current = threading.local()
_observing = threading.Lock()
_observed = False


def _observe() -> None:
    """Listen, once per process, to every engine for what tries send (see :class:`_Try`)."""
    global _observed
    with _observing:
        if _observed:
            return
        event.listen(Engine, "begin", _on_begin)
        event.listen(Engine, "commit", _on_commit)
        event.listen(Engine, "before_cursor_execute", _on_execute)
        event.listen(Engine, "handle_error", _on_error)
        _observed = True


def _try() -> _Try | None:
    return getattr(_current, "try_", None)


def _on_begin(_conn: Any) -> None:
    if (attempt := _try()) is not None:
        attempt.started = True


def _on_commit(_conn: Any) -> None:
    if (attempt := _try()) is not None:
        attempt.sent = True


def _on_execute(conn: Any, *_: Any) -> None:
    if (attempt := _try()) is not None:
        attempt.started = True
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            attempt.sent = True  # the statement commits itself


def _on_error(context: Any) -> None:
    if (attempt := _try()) is not None and context.connection is None:
        attempt.connect_failed = True  # no connection: nothing was sent


class Retry:
    """Runs store operations with tenacity and translates their errors.

    Args:
        attempts: Tries per operation, the first included, while the database was
            never reached.
        wait_s: The first backoff; it doubles per try, up to ``max_wait_s``.
        max_wait_s: The longest backoff.
        patience_s: How long transient errors are retried once the database was
            reached (an outage or a restart).
        sleep: Waits between tries (tests pass their own).
    """

    def __init__(
        self,
        attempts: int = 5,
        wait_s: float = 0.05,
        max_wait_s: float = 2.0,
        patience_s: float = PATIENCE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts = max(1, attempts)
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s
        self.patience_s = patience_s
        self.sleep = sleep
        self.outage = Outage("the database", log, _outage_reason)
        self._reached = False
        _observe()

    def __call__(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``fn``; ``what`` names the operation, table and ids for messages.

        Raises:
            StoreUnavailable: Transient errors outlasted the retries.
            StoreError: Any other database error.
        """
        tries: list[_Try] = []

        def attempt() -> T:
            tried = _Try()
            tries.append(tried)
            outer, _current.try_ = _try(), tried
            try:
                return fn()
            finally:
                _current.try_ = outer

        def may_retry(exc: BaseException) -> bool:
            if not is_transient(exc):
                return False
            return idempotent or tries[-1].wrote_nothing or is_nothing_written(exc)

        try:
            return self._done(attempt())  # the common case, without building a retryer
        except StoreError:
            raise
        except DBAPIError as exc:
            if not may_retry(exc) or (self.attempts == 1 and not self._reached):
                raise self._translate(what, exc) from exc
            if self._reached:
                self.outage.failed(exc, what)
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc}") from exc
        self.sleep(self.wait_s)
        retrying = Retrying(  # the tries left, backing off
            stop=self._stop(time.monotonic()),
            wait=wait_exponential(multiplier=self.wait_s, max=self.max_wait_s),
            retry=retry_if_exception(may_retry),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return self._done(retrying(attempt))
        except StoreError:
            raise
        except DBAPIError as exc:
            raise self._translate(what, exc) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    def _stop(self, started: float) -> Callable[[RetryCallState], bool]:
        """Stop after ``attempts`` tries, or after ``patience_s`` once the database was reached."""

        def stop(state: RetryCallState) -> bool:
            if self._reached:
                return time.monotonic() - started >= self.patience_s
            return state.attempt_number >= self.attempts - 1

        return stop

    def _done(self, result: T) -> T:
        self._reached = True
        self.outage.ok()
        return result

    @staticmethod
    def _translate(what: str, exc: DBAPIError) -> StoreError:
        if is_transient(exc):
            return StoreUnavailable(
                f"{what}: the database is unavailable ({_reason(exc)}); "
                "check that it is running and reachable, then try again"
            )
        return StoreError(f"{what} failed: {_reason(exc)}")


def _outage_reason(exc: BaseException) -> str:
    return _reason(exc) if isinstance(exc, DBAPIError) else str(exc)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
