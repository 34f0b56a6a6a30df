"""Run logs and in-flight states in every store (DESIGN 3.16, section 4 States).

An attempt's log records are kept with the run, replaced as a whole when the
attempt runs again, and read back by job in ``id`` order with loop, node and
level filters. A queued state is written only where no row holds its attempt.
"""

from __future__ import annotations

import logging

from orchestrator.store import LogRecord, RunRecord, Store


def _record(node: str, message: str, level: int = logging.INFO, loop: str = "ticks") -> LogRecord:
    return LogRecord(
        run_id=f"j1:{loop}:0:{node}",
        job_id="j1",
        loop=loop,
        iteration=0,
        node_id=node,
        attempt=1,
        at=1.0,
        level=level,
        logger="segue.node",
        message=message,
    )


def test_a_jobs_log_reads_back_in_order_after_an_id(store: Store) -> None:
    store.save_logs("j1:ticks:0:a", 1, [_record("a", "one"), _record("a", "two")])
    store.save_logs("j1:ticks:0:b", 1, [_record("b", "three", logging.ERROR)])

    lines = store.read_logs("j1")
    assert [r.message for r in lines] == ["one", "two", "three"]
    ids = [r.id for r in lines]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] > 0
    assert [r.message for r in store.read_logs("j1", after=ids[1])] == ["three"]
    assert store.read_logs("j2") == []
    assert lines[2] == LogRecord(**{**vars(_record("b", "three", logging.ERROR)), "id": ids[2]})


def test_filters_pick_a_loop_a_node_and_a_least_level(store: Store) -> None:
    store.save_logs("j1:ticks:0:a", 1, [_record("a", "info"), _record("a", "bad", logging.ERROR)])
    store.save_logs("j1:main:0:b", 1, [_record("b", "main", loop="main")])

    assert [r.message for r in store.read_logs("j1", node="a")] == ["info", "bad"]
    assert [r.message for r in store.read_logs("j1", loop="main")] == ["main"]
    assert [r.message for r in store.read_logs("j1", level=logging.WARNING)] == ["bad"]
    assert [r.message for r in store.read_logs("j1", limit=1)] == ["info"]


def test_an_attempt_run_again_keeps_only_its_latest_log(store: Store) -> None:
    store.save_logs("j1:ticks:0:a", 1, [_record("a", "first try"), _record("a", "more")])
    store.save_logs("j1:ticks:0:a", 2, [_record("a", "second attempt")])
    store.save_logs("j1:ticks:0:a", 1, [_record("a", "first try, executed again")])

    lines = store.read_logs("j1")
    assert sorted((r.attempt, r.message) for r in lines) == [
        (1, "first try, executed again"),
        (2, "second attempt"),
    ]


# in-flight states ----------------------------------------------------------------------
def _run(status: str, attempt: int = 1) -> RunRecord:
    return RunRecord("j1:main:0:n", "j1", "main", 0, "n", "Sleep", status, attempt, queue="thread")


def test_a_queued_state_is_written_only_where_no_row_holds_its_attempt(store: Store) -> None:
    assert store.queue_run(_run("queued"))
    stored = store.get_run("j1:main:0:n")
    assert stored is not None and stored.status == "queued" and stored.queue == "thread"
    assert not store.queue_run(_run("queued")), "the same attempt again"

    assert store.claim_run(_run("running"))
    assert not store.queue_run(_run("queued")), "a worker's claim came first"
    stored = store.get_run("j1:main:0:n")
    assert stored is not None and stored.status == "running"

    store.record_runs([_run("retrying")])
    assert store.queue_run(_run("queued", attempt=2)), "the next attempt waits"
    store.record_runs([_run("succeeded", attempt=2)])
    assert not store.queue_run(_run("queued", attempt=3)), "never over a finished run"
    assert not store.claim_run(_run("running", attempt=2))
    stored = store.get_run("j1:main:0:n")
    assert stored is not None and stored.status == "succeeded"
