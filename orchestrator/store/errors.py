"""Errors of the state store, children of :class:`~nodes.errors.SegueError`.

Each class says whether repeating the failed operation may succeed
(``retryable``): a database that is down or locked may come back, a
conflicting id or a missing job will not.
"""

from __future__ import annotations

from nodes.errors import SegueError


class StoreError(SegueError):
    """A state-store operation failed; the message names the table and the id."""


class StoreUnavailable(StoreError):
    """The database could not be reached or stayed locked after a few retries."""

    retryable = True


class StoreConflict(StoreError):
    """A record with the same id already exists (for example a second job ``id``)."""


class JobNotFound(StoreError, LookupError):
    """An operation named a job the store does not hold."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id!r} is not in the store (table jobs); create it with create_job first"
        )


class RecorderClosed(StoreError):
    """A run or an event was submitted to a :class:`BatchingRecorder` after ``close()``."""
