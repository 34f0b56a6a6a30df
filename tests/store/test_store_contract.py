"""The store contract: every implementation (memory, SQLite, PostgreSQL) behaves the same."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.store import (
    EventRecord,
    JobNotFound,
    JobRecord,
    LoopRecord,
    RunRecord,
    Store,
    StoreConflict,
)

RICH: dict[str, Any] = {
    "nested": {"list": [1, 2.5, None, True, False, "x", [], {}], "dict": {"a": {"b": {"c": []}}}},
    "unicode": "héllo ✓ 日本語 🚀 \u00e9\u0301",
    "null": None,
    "empty": "",
    "quotes": 'a "quoted" \\ back\nslash',
    "big": 2**53,
    "small": -1.5e-7,
}


def a_job(job_id: str = "j1", *, created_at: float = 1.0, status: str = "pending") -> JobRecord:
    return JobRecord(
        id=job_id,
        workflow="wf",
        status=status,
        spec={"name": "wf", "nodes": []},
        inputs={"n": 3},
        created_at=created_at,
    )


def a_run(
    iteration: int = 0,
    node: str = "a",
    *,
    status: str = "queued",
    attempt: int = 1,
    loop: str = "main",
    job_id: str = "j1",
    **fields: Any,
) -> RunRecord:
    return RunRecord(
        run_id=f"{job_id}:{loop}:{iteration}:{node}",
        job_id=job_id,
        loop=loop,
        iteration=iteration,
        node_id=node,
        type_name="Add",
        status=status,
        attempt=attempt,
        **fields,
    )


def an_event(kind: str, job_id: str = "j1", at: float = 1.0, **fields: Any) -> EventRecord:
    return EventRecord(job_id=job_id, kind=kind, at=at, **fields)


# jobs -------------------------------------------------------------------------
def test_a_job_round_trips(store: Store) -> None:
    job = replace(a_job(), outputs={"sum": 6}, owner=None, cancel_requested=False)
    store.create_job(job)
    assert store.get_job("j1") == job
    assert store.get_job("missing") is None


def test_creating_a_job_twice_is_a_conflict(store: Store) -> None:
    store.create_job(a_job())
    with pytest.raises(StoreConflict, match="j1"):
        store.create_job(replace(a_job(), workflow="other"))
    assert store.get_job("j1") == a_job()


def test_list_jobs_gives_newest_first_and_filters_by_status(store: Store) -> None:
    store.create_job(a_job("old", created_at=1.0))
    store.create_job(a_job("new", created_at=3.0, status="running"))
    store.create_job(a_job("mid", created_at=2.0))
    assert [j.id for j in store.list_jobs()] == ["new", "mid", "old"]
    assert [j.id for j in store.list_jobs(status="pending")] == ["mid", "old"]
    assert [j.id for j in store.list_jobs(limit=1)] == ["new"]


def test_update_job_sets_the_start_and_end_times(store: Store) -> None:
    store.create_job(a_job())
    store.update_job("j1", status="running", at=10.0)
    store.update_job("j1", status="running", at=11.0)
    store.update_job("j1", status="completed", at=20.0, outputs={"sum": 6})
    job = store.get_job("j1")
    assert job is not None
    assert (job.status, job.started_at, job.finished_at) == ("completed", 10.0, 20.0)
    assert job.outputs == {"sum": 6}


def test_update_job_never_moves_a_finished_job(store: Store) -> None:
    store.create_job(a_job())
    store.update_job("j1", status="failed", at=5.0, error="node add failed")
    store.update_job("j1", status="completed", at=6.0, outputs={"sum": 1})
    store.update_job("j1", status="running", at=7.0)
    job = store.get_job("j1")
    assert job is not None
    assert (job.status, job.finished_at, job.error, job.outputs) == (
        "failed",
        5.0,
        "node add failed",
        {},
    )


def test_update_job_of_an_unknown_job_raises_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound, match="nope"):
        store.update_job("nope", status="running", at=1.0)


def test_request_cancel_marks_the_job_and_is_false_for_an_unknown_job(store: Store) -> None:
    store.create_job(a_job())
    assert store.request_cancel("j1") is True
    assert store.request_cancel("j1") is True
    assert store.request_cancel("nope") is False
    job = store.get_job("j1")
    assert job is not None and job.cancel_requested


def test_a_job_lease_is_held_by_its_owner_until_it_ends(store: Store) -> None:
    store.create_job(a_job())
    assert store.lease_job("j1", "coord-a", until=10.0, now=0.0)
    assert not store.lease_job("j1", "coord-b", until=20.0, now=5.0)
    assert store.lease_job("j1", "coord-a", until=15.0, now=5.0)
    assert store.lease_job("j1", "coord-b", until=30.0, now=16.0)
    job = store.get_job("j1")
    assert job is not None and (job.owner, job.lease_until) == ("coord-b", 30.0)
    store.update_job("j1", status="completed", at=17.0)
    assert not store.lease_job("j1", "coord-b", until=40.0, now=17.0)
    assert not store.lease_job("nope", "coord-a", until=1.0, now=0.0)


def test_a_stored_job_is_not_changed_by_mutating_what_was_passed_or_returned(
    store: Store,
) -> None:
    job = a_job()
    store.create_job(job)
    job.spec["nodes"].append("sneaky")
    got = store.get_job("j1")
    assert got is not None
    got.inputs["n"] = 99
    assert store.get_job("j1") == a_job()


# loops ------------------------------------------------------------------------
def test_saving_loops_again_keeps_the_stored_desired_state(store: Store) -> None:
    store.save_loops([LoopRecord("j1", "main", "running"), LoopRecord("j1", "feed", "running")])
    assert store.request_loop("j1", "feed", "paused") is True
    store.save_loops(
        [LoopRecord("j1", "feed", "running", desired="running", iterations=4, cursor={"i": 4})]
    )
    [_, feed] = store.list_loops("j1")
    assert (feed.desired, feed.status, feed.iterations, feed.cursor) == (
        "paused",
        "running",
        4,
        {"i": 4},
    )


def test_loops_are_listed_main_first_then_in_creation_order(store: Store) -> None:
    store.save_loops([LoopRecord("j1", "zeta", "pending"), LoopRecord("j1", "alpha", "pending")])
    store.save_loops([LoopRecord("j1", "main", "running"), LoopRecord("j2", "other", "pending")])
    store.save_loops([LoopRecord("j1", "zeta", "running", iterations=1)])
    assert [loop.name for loop in store.list_loops("j1")] == ["main", "zeta", "alpha"]
    assert store.list_loops("nope") == []


def test_request_loop_on_an_unknown_loop_is_false(store: Store) -> None:
    store.save_loops([LoopRecord("j1", "main", "running")])
    assert store.request_loop("j1", "feed", "paused") is False
    assert store.request_loop("j2", "main", "paused") is False


# runs -------------------------------------------------------------------------
def test_a_claimed_run_completes(store: Store) -> None:
    assert store.claim_run(a_run(status="queued", worker="w1", started_at=1.0))
    claimed = store.get_run("j1:main:0:a")
    assert claimed is not None and (claimed.status, claimed.worker) == ("running", "w1")
    done = a_run(status="succeeded", worker="w1", finished_at=2.0, outputs={"sum": 3})
    assert store.complete_run(done)
    assert store.get_run("j1:main:0:a") == replace(done, started_at=1.0)


def test_a_redelivered_claim_after_completion_is_refused(store: Store) -> None:
    store.claim_run(a_run(worker="w1"))
    store.complete_run(a_run(status="succeeded", outputs={"sum": 3}))
    assert store.claim_run(a_run(worker="w2")) is False
    run = store.get_run("j1:main:0:a")
    assert run is not None and (run.status, run.worker) == ("succeeded", "w1")


def test_a_redelivered_claim_of_a_running_attempt_is_allowed(store: Store) -> None:
    assert store.claim_run(a_run(worker="w1"))
    assert store.claim_run(a_run(worker="w2"))
    run = store.get_run("j1:main:0:a")
    assert run is not None and run.worker == "w2"


def test_a_duplicate_completion_never_overwrites_the_first(store: Store) -> None:
    store.claim_run(a_run())
    assert store.complete_run(a_run(status="succeeded", outputs={"sum": 1}, finished_at=2.0))
    assert not store.complete_run(a_run(status="succeeded", outputs={"sum": 2}, finished_at=3.0))
    assert not store.complete_run(a_run(status="failed", error="boom", finished_at=4.0))
    run = store.get_run("j1:main:0:a")
    assert run is not None
    assert (run.status, run.outputs, run.finished_at, run.error) == (
        "succeeded",
        {"sum": 1},
        2.0,
        None,
    )


def test_a_newer_attempt_claim_works_and_an_older_one_is_refused(store: Store) -> None:
    assert store.claim_run(a_run(attempt=1))
    store.record_runs([a_run(status="retrying", attempt=1, error="flaky")])
    assert store.claim_run(a_run(attempt=2, worker="w2"))
    assert not store.claim_run(a_run(attempt=1, worker="w1"))
    run = store.get_run("j1:main:0:a")
    assert run is not None and (run.status, run.attempt, run.worker) == ("running", 2, "w2")


def test_a_late_completion_of_a_superseded_attempt_is_dropped(store: Store) -> None:
    store.claim_run(a_run(attempt=2))
    assert not store.complete_run(a_run(status="failed", attempt=1, error="lost worker"))
    assert store.complete_run(a_run(status="succeeded", attempt=2, outputs={"sum": 3}))
    run = store.get_run("j1:main:0:a")
    assert run is not None and (run.status, run.attempt) == ("succeeded", 2)


def test_record_runs_never_overwrites_finished_rows_and_counts_changes(store: Store) -> None:
    store.record_runs([a_run(0, status="succeeded", outputs={"v": 0}), a_run(1)])
    changed = store.record_runs(
        [
            a_run(0, status="failed", error="late"),  # finished: refused
            a_run(1, status="succeeded", outputs={"v": 1}),  # queued -> succeeded
            a_run(2, status="queued"),  # new
        ]
    )
    assert changed == 2
    runs = {r.iteration: r for r in store.list_runs("j1")}
    assert (runs[0].status, runs[0].outputs, runs[0].error) == ("succeeded", {"v": 0}, None)
    assert (runs[1].status, runs[1].outputs) == ("succeeded", {"v": 1})
    assert runs[2].status == "queued"
    assert store.record_runs([]) == 0


def test_record_runs_applies_several_records_of_one_run_in_order(store: Store) -> None:
    changed = store.record_runs(
        [
            a_run(status="queued", queued_at=1.0),
            a_run(status="running", started_at=2.0),
            a_run(status="succeeded", outputs={"v": 1}, finished_at=3.0),
            a_run(status="failed", error="duplicate"),
        ]
    )
    assert changed == 3
    run = store.get_run("j1:main:0:a")
    assert run is not None
    assert (run.status, run.queued_at, run.started_at, run.finished_at, run.outputs) == (
        "succeeded",
        1.0,
        2.0,
        3.0,
        {"v": 1},
    )


def test_record_writes_runs_then_the_events_submitted_with_them(store: Store) -> None:
    store.create_job(a_job())
    store.record(
        [a_run(status="queued"), a_run(status="succeeded", outputs={"v": 1})],
        [EventRecord(job_id="j1", kind="input", at=1.0, data=RICH)],
    )
    run = store.get_run("j1:main:0:a")
    assert run is not None and (run.status, run.outputs) == ("succeeded", {"v": 1})
    events = store.read_events("j1")
    assert [(e.kind, e.data) for e in events] == [("input", RICH)]
    store.record([a_run(1)], [])
    store.record([], [EventRecord(job_id="j1", kind="loop", at=2.0)])
    assert len(store.list_runs("j1")) == 2 and len(store.read_events("j1")) == 2


def test_run_fields_left_none_keep_their_stored_values(store: Store) -> None:
    store.record_runs([a_run(queue="gpu", queued_at=1.0)])
    store.claim_run(a_run(worker="w1", started_at=2.0))
    store.complete_run(a_run(status="succeeded", finished_at=3.0, outputs={}))
    run = store.get_run("j1:main:0:a")
    assert run is not None
    assert (run.queue, run.worker, run.queued_at, run.started_at, run.finished_at) == (
        "gpu",
        "w1",
        1.0,
        2.0,
        3.0,
    )


TRACEBACK = 'Traceback (most recent call last):\n  File "flaky.py", line 3, in run\nNodeError: no\n'


def test_a_failed_attempts_traceback_is_kept_with_its_error_and_replaced_by_the_next(
    store: Store,
) -> None:
    store.record_runs([a_run(status="retrying", error="NodeError: no", traceback=TRACEBACK)])
    retrying = store.get_run("j1:main:0:a")
    store.complete_run(
        a_run(status="failed", attempt=2, error="NodeError: again", traceback=TRACEBACK + "2")
    )

    assert retrying is not None and (retrying.error, retrying.traceback) == (
        "NodeError: no",
        TRACEBACK,
    )
    [failed] = store.list_runs("j1")
    assert (failed.status, failed.error, failed.traceback) == (
        "failed",
        "NodeError: again",
        TRACEBACK + "2",
    )


def test_a_run_that_succeeds_after_a_failed_attempt_keeps_no_traceback(store: Store) -> None:
    store.record_runs([a_run(status="retrying", error="NodeError: no", traceback=TRACEBACK)])
    store.complete_run(a_run(status="succeeded", attempt=2, outputs={"v": 1}))

    run = store.get_run("j1:main:0:a")
    assert run is not None and (run.status, run.error, run.traceback) == ("succeeded", None, None)


def test_list_runs_orders_by_loop_iteration_and_node_and_filters_by_loop(store: Store) -> None:
    store.record_runs(
        [a_run(1, "b", loop="feed"), a_run(0, "b"), a_run(0, "a"), a_run(0, "a", loop="feed")]
    )
    store.record_runs([a_run(0, "a", job_id="j2")])
    assert [r.run_id for r in store.list_runs("j1")] == [
        "j1:feed:0:a",
        "j1:feed:1:b",
        "j1:main:0:a",
        "j1:main:0:b",
    ]
    assert [r.run_id for r in store.list_runs("j1", loop="main")] == ["j1:main:0:a", "j1:main:0:b"]
    assert store.get_run("j9:main:0:a") is None


@pytest.mark.parametrize("claimed_first", [True, False], ids=["claimed", "unclaimed"])
def test_exactly_one_of_eight_concurrent_completions_wins(
    store: Store, claimed_first: bool
) -> None:
    if claimed_first:
        store.claim_run(a_run())
    start = threading.Barrier(8)
    results: dict[int, bool] = {}

    def complete(i: int) -> None:
        start.wait()
        results[i] = store.complete_run(a_run(status="succeeded", outputs={"winner": i}))

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, won in results.items() if won]
    assert len(results) == 8 and len(winners) == 1
    run = store.get_run("j1:main:0:a")
    assert run is not None and run.outputs == {"winner": winners[0]}


# events -----------------------------------------------------------------------
def test_events_get_increasing_seq_and_read_events_paginates(store: Store) -> None:
    store.append_events([an_event(f"e{i}", at=float(i)) for i in range(5)])
    store.append_events([an_event("other", job_id="j2")])
    store.append_events([an_event("e5", at=5.0, run_id="j1:main:0:a", status="succeeded")])
    store.append_events([])
    events = store.read_events("j1")
    assert [e.kind for e in events] == [f"e{i}" for i in range(6)]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6 and seqs[0] > 0
    page1 = store.read_events("j1", limit=4)
    page2 = store.read_events("j1", after=page1[-1].seq, limit=4)
    assert [e.kind for e in page1 + page2] == [e.kind for e in events]
    assert store.read_events("j1", after=seqs[-1]) == []
    assert events[5] == an_event(
        "e5", at=5.0, run_id="j1:main:0:a", status="succeeded", seq=seqs[5]
    )
    assert [e.kind for e in store.read_events("j2")] == ["other"]


# cache and workflows --------------------------------------------------------------
def test_the_first_cache_write_wins(store: Store) -> None:
    assert store.cache_get("k") is None
    store.cache_put("k", "Add", {"sum": 1}, at=1.0)
    store.cache_put("k", "Add", {"sum": 2}, at=2.0)
    assert store.cache_get("k") == {"sum": 1}


def test_the_first_workflow_saved_under_a_digest_wins(store: Store) -> None:
    store.save_workflow("wf", "d1", {"name": "wf", "v": 1}, at=1.0)
    store.save_workflow("wf", "d1", {"name": "wf", "v": 2}, at=2.0)
    saved = store.get_workflow("d1")
    assert saved is not None and (saved.spec["v"], saved.created_at) == (1, 1.0)
    assert store.get_workflow("d2") is None


# JSON -------------------------------------------------------------------------
def test_json_values_round_trip(store: Store) -> None:
    store.create_job(replace(a_job(), spec=RICH, inputs=RICH, outputs=RICH))
    store.save_loops([LoopRecord("j1", "main", "running", cursor=RICH, policy=RICH)])
    store.save_loops([LoopRecord("j1", "feed", "running", cursor=None)])
    store.save_loops([LoopRecord("j1", "list", "running", cursor=[1, "two", None])])
    store.complete_run(a_run(status="succeeded", outputs=RICH))
    store.complete_run(a_run(1, status="failed", outputs=None, error="ünïcode error ✗"))
    store.append_events([an_event("e", data=RICH)])
    store.cache_put("k", "Add", RICH, at=1.0)

    job = store.get_job("j1")
    assert job is not None and job.spec == job.inputs == job.outputs == RICH
    main, feed, listed = store.list_loops("j1")
    assert (main.cursor, main.policy, feed.cursor, listed.cursor) == (
        RICH,
        RICH,
        None,
        [1, "two", None],
    )
    run0, run1 = store.list_runs("j1")
    assert (run0.outputs, run1.outputs, run1.error) == (RICH, None, "ünïcode error ✗")
    assert store.read_events("j1")[0].data == RICH
    assert store.cache_get("k") == RICH
