"""A store rides out a database outage (issue 13): a call unsafe to repeat is tried again
only when its failed try is known to have written nothing, and a store that reached its
database waits for it to come back, logging the outage once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from orchestrator.store import EventRecord, SqlStore, StoreUnavailable
from orchestrator.store.sql import Retry
from orchestrator.store.sql.connection import sqlite_url


def _dropped() -> OperationalError:
    return OperationalError(
        "INSERT ...", {}, Exception("server closed the connection unexpectedly")
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore.open(sqlite_url(tmp_path / "segue.db"), retry=Retry(wait_s=0.001))
    yield opened
    opened.close()


def _fail_once(store: SqlStore, when: str) -> list[str]:
    """Drop the connection once, at the next statement or at the next commit."""
    failed: list[str] = []

    def fail(*_: Any) -> None:
        if not failed:
            failed.append(when)
            raise _dropped()

    event.listen(store.engine, when, fail)
    return failed


def _events(store: SqlStore) -> list[EventRecord]:
    return store.read_events("j")


def test_an_append_whose_connection_dropped_before_its_commit_is_tried_again_once(
    store: SqlStore,
) -> None:
    failed = _fail_once(store, "before_cursor_execute")
    store.append_events([EventRecord(job_id="j", kind="input", at=1.0)])
    assert failed and [e.kind for e in _events(store)] == ["input"]


def test_an_append_whose_commit_may_have_landed_is_not_tried_again(store: SqlStore) -> None:
    failed = _fail_once(store, "commit")
    with pytest.raises(StoreUnavailable, match="appending 1 events"):
        store.append_events([EventRecord(job_id="j", kind="input", at=1.0)])
    assert failed == ["commit"]


def _flaky(failures: int) -> Callable[[], str]:
    left = [failures]

    def call() -> str:
        if left[0]:
            left[0] -= 1
            raise _dropped()
        return "ok"

    return call


def test_a_store_that_reached_its_database_waits_for_it_and_logs_the_outage_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    retry = Retry(attempts=3, wait_s=0.01, patience_s=60, sleep=slept.append)
    assert retry("reading a job", _flaky(0)) == "ok"  # the database is reached
    with caplog.at_level(logging.WARNING, logger="segue.store"):
        assert retry("reading a job", _flaky(20)) == "ok"  # far more than 3 tries
    assert len(slept) == 20
    assert [r.getMessage().split(" (")[0].split(" after")[0] for r in caplog.records] == [
        "lost the database while reading a job",
        "the database is back",
    ]


def test_a_store_that_never_reached_its_database_gives_up_after_its_attempts() -> None:
    slept: list[float] = []
    retry = Retry(attempts=3, wait_s=0.01, sleep=slept.append)
    with pytest.raises(StoreUnavailable, match="reading a job: the database is unavailable"):
        retry("reading a job", _flaky(20))
    assert len(slept) == 2


def test_an_outage_longer_than_the_patience_raises_store_unavailable() -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds + 1.0

    retry = Retry(attempts=3, wait_s=0.01, patience_s=5, sleep=sleep)
    retry("reading a job", _flaky(0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("orchestrator.store.sql.retry.time.monotonic", lambda: clock[0])
        with pytest.raises(StoreUnavailable):
            retry("reading a job", _flaky(1000))
    assert 4 <= clock[0] <= 10
