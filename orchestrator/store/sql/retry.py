"""Retrying transient database errors, and turning database errors into store errors.

Only calls that are safe to repeat are retried on every transient error
(a dropped connection may have lost a commit, so repeating must not change the
outcome). Calls that are not (appending events, creating a job) are retried
only on errors that guarantee nothing was written: SQLite's "database is
locked" and PostgreSQL's serialisation failures and deadlocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from orchestrator.store.errors import StoreError, StoreUnavailable

T = TypeVar("T")

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


class Retry:
    """Runs store operations with tenacity and translates their errors.

    Args:
        attempts: Tries per operation, the first included.
        wait_s: The first backoff; it doubles per try, up to ``max_wait_s``.
        max_wait_s: The longest backoff.
    """

    def __init__(self, attempts: int = 5, wait_s: float = 0.05, max_wait_s: float = 2.0) -> None:
        self.attempts = max(1, attempts)
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s

    def __call__(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run ``fn``; ``what`` names the operation, table and ids for messages.

        Raises:
            StoreUnavailable: Transient errors outlasted the retries.
            StoreError: Any other database error.
        """
        try:
            return fn()  # the common case, without building a tenacity retryer
        except StoreError:
            raise
        except DBAPIError as exc:
            retryable = is_transient(exc) if idempotent else is_nothing_written(exc)
            if not retryable or self.attempts == 1:
                raise self._translate(what, exc) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc}") from exc
        time.sleep(self.wait_s)
        retrying = Retrying(  # the tries left, backing off
            stop=stop_after_attempt(self.attempts - 1),
            wait=wait_exponential(multiplier=self.wait_s, max=self.max_wait_s),
            retry=retry_if_exception(is_transient if idempotent else is_nothing_written),
            reraise=True,
        )
        try:
            return retrying(fn)
        except StoreError:
            raise
        except DBAPIError as exc:
            raise self._translate(what, exc) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    @staticmethod
    def _translate(what: str, exc: DBAPIError) -> StoreError:
        if is_transient(exc):
            return StoreUnavailable(
                f"{what}: the database is unavailable ({_reason(exc)}); "
                "check that it is running and reachable, then try again"
            )
        return StoreError(f"{what} failed: {_reason(exc)}")


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
