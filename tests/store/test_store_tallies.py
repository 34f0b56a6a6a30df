"""The store's totals for metrics, on every store: the same counts from memory and SQL."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.store import JobRecord, LoopRecord, LoopTally, RunTally, Store
from tests.store.test_store_contract import a_job, a_run

BOUNDS = (0.5, 1.0, 5.0)


def a_loop(job: str, name: str, status: str, iterations: int = 0, failed: int = 0) -> LoopRecord:
    return LoopRecord(
        job_id=job, name=name, status=status, iterations=iterations, failed_iterations=failed
    )


def two_jobs_of_one_workflow_and_one_of_another(store: Store) -> None:
    store.create_job(a_job("j1", status="running"))
    store.create_job(a_job("j2", status="completed"))
    store.create_job(replace(a_job("j3", status="running"), workflow="other"))


def test_an_empty_store_counts_nothing(store: Store) -> None:
    tallies = store.tallies(BOUNDS)

    assert (tallies.jobs, tallies.loops, tallies.runs) == ({}, (), ())


def test_jobs_are_counted_by_status(store: Store) -> None:
    two_jobs_of_one_workflow_and_one_of_another(store)
    store.create_job(JobRecord(id="j4", workflow="wf", status="failed"))

    assert store.tallies(BOUNDS).jobs == {"running": 2, "completed": 1, "failed": 1}


def test_loops_are_summed_by_workflow_loop_and_status(store: Store) -> None:
    two_jobs_of_one_workflow_and_one_of_another(store)
    store.save_loops(
        [
            a_loop("j1", "main", "completed", iterations=1),
            a_loop("j1", "ticks", "running", iterations=7, failed=2),
            a_loop("j2", "main", "completed", iterations=1),
            a_loop("j2", "ticks", "running", iterations=3, failed=1),
            a_loop("j3", "ticks", "paused", iterations=4),
        ]
    )

    assert store.tallies(BOUNDS).loops == (
        LoopTally("other", "ticks", "paused", loops=1, iterations=4, failed_iterations=0),
        LoopTally("wf", "main", "completed", loops=2, iterations=2, failed_iterations=0),
        LoopTally("wf", "ticks", "running", loops=2, iterations=10, failed_iterations=3),
    )


def test_only_finished_runs_count_with_their_durations_bucketed(store: Store) -> None:
    two_jobs_of_one_workflow_and_one_of_another(store)
    timed = {"started_at": 10.0}
    store.record_runs(
        [
            a_run(0, status="succeeded", finished_at=10.25, **timed),
            a_run(1, status="succeeded", finished_at=11.0, **timed),
            a_run(2, status="succeeded", job_id="j2", finished_at=13.0, **timed),
            a_run(3, status="succeeded", job_id="j2", finished_at=30.0, **timed),
            a_run(4, status="failed", attempt=3, finished_at=10.5, **timed),
            a_run(5, status="cached", finished_at=12.0),  # no start: counted, not timed
            a_run(6, status="running", **timed),  # unfinished: not counted
            a_run(7, status="retrying", attempt=2),
            a_run(0, status="skipped", node="b", job_id="j3"),
        ]
    )

    assert store.tallies(BOUNDS).runs == (
        RunTally("other", "Add", "skipped", runs=1, timed=0, seconds=0.0, buckets=(0, 0, 0)),
        RunTally("wf", "Add", "cached", runs=1, timed=0, seconds=0.0, buckets=(0, 0, 0)),
        RunTally("wf", "Add", "failed", runs=1, timed=1, seconds=0.5, buckets=(1, 1, 1)),
        RunTally("wf", "Add", "succeeded", runs=4, timed=4, seconds=24.25, buckets=(1, 2, 3)),
    )


def test_run_totals_never_shrink_as_runs_move_on(store: Store) -> None:
    store.create_job(a_job("j1", status="running"))
    store.claim_run(a_run(0, started_at=1.0))
    before = store.tallies(BOUNDS).runs
    store.complete_run(a_run(0, status="succeeded", started_at=1.0, finished_at=1.75))
    store.complete_run(a_run(0, status="failed", started_at=1.0, finished_at=9.0))  # refused

    assert before == ()
    assert store.tallies(BOUNDS).runs == (
        RunTally("wf", "Add", "succeeded", runs=1, timed=1, seconds=0.75, buckets=(0, 1, 1)),
    )
