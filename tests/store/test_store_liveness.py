"""The store's liveness contract (DESIGN section 3, item 12), on every store:
heartbeats replace a process's row, and a claim never runs beside a live holder."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.store import ProcessRecord, Store
from tests.store.test_store_contract import a_run


def a_process(name: str = "w1", beat_at: float = 100.0, **fields: object) -> ProcessRecord:
    base = ProcessRecord(name=name, kind="worker", host="h", pid=1, started_at=1.0, beat_at=beat_at)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_a_heartbeat_replaces_the_row_of_its_process(store: Store) -> None:
    store.announce(a_process(holds=("j:main:0:a",), queues=("thread",), idle_since=None))
    store.announce(a_process(beat_at=102.0, holds=(), idle_since=101.5, info={"pool": "thread"}))
    store.announce(a_process("c1", kind="coordinator", holds=("j",)))

    by_name = {p.name: p for p in store.list_processes()}
    assert set(by_name) == {"w1", "c1"}
    worker = by_name["w1"]
    assert (worker.beat_at, worker.holds, worker.queues) == (102.0, (), ())
    assert (worker.idle_since, worker.info, worker.state) == (101.5, {"pool": "thread"}, "alive")
    assert by_name["c1"].holds == ("j",)


def test_processes_silent_since_before_a_time_are_forgotten(store: Store) -> None:
    store.announce(a_process("old", beat_at=10.0))
    store.announce(a_process("new", beat_at=50.0))

    assert store.forget_processes(before=20.0) == 1
    assert [p.name for p in store.list_processes()] == ["new"]


def test_a_claim_is_refused_while_another_live_worker_runs_the_run(store: Store) -> None:
    store.announce(a_process("w1", beat_at=100.0))
    assert store.claim_run(a_run(worker="w1"), live_after=90.0)

    assert store.claim_run(a_run(worker="w2"), live_after=90.0) is False
    run = store.get_run("j1:main:0:a")
    assert run is not None and run.worker == "w1"


def test_a_claim_takes_over_from_a_silent_stopped_or_unknown_holder(store: Store) -> None:
    store.announce(a_process("silent", beat_at=50.0))
    store.announce(a_process("stopped", beat_at=100.0, state="stopped"))
    for holder in ("silent", "stopped", "never-announced"):
        run = replace(a_run(worker=holder), run_id=f"j1:main:0:{holder}", node_id=holder)
        assert store.claim_run(run)
        claim = replace(run, worker="w2")

        assert store.claim_run(claim, live_after=90.0), holder
        stored = store.get_run(run.run_id)
        assert stored is not None and stored.worker == "w2"


def test_the_holder_itself_may_claim_again_and_finished_runs_stay_refused(store: Store) -> None:
    store.announce(a_process("w1", beat_at=100.0))
    assert store.claim_run(a_run(worker="w1"), live_after=90.0)
    assert store.claim_run(a_run(worker="w1"), live_after=90.0)

    store.complete_run(a_run(status="succeeded", worker="w1", outputs={"sum": 3}))
    store.announce(a_process("w1", beat_at=10.0))  # even once its holder went silent
    assert store.claim_run(a_run(worker="w2"), live_after=90.0) is False


def test_without_live_after_a_claim_ignores_liveness(store: Store) -> None:
    store.announce(a_process("w1", beat_at=100.0))
    assert store.claim_run(a_run(worker="w1"))

    assert store.claim_run(a_run(worker="w2"))


def test_the_liveness_of_one_run_s_holder_decides_its_claim_not_another_s(store: Store) -> None:
    store.announce(a_process("alive", beat_at=100.0))
    store.announce(a_process("dead", beat_at=10.0))
    mine = replace(a_run(worker="dead"), run_id="j1:main:0:dead", node_id="dead")
    other = replace(a_run(worker="alive"), run_id="j1:main:0:alive", node_id="alive")
    assert store.claim_run(mine) and store.claim_run(other)

    assert store.claim_run(replace(mine, worker="w2"), live_after=90.0)
    assert store.claim_run(replace(other, worker="w2"), live_after=90.0) is False


def test_a_process_found_dead_stops_holding_its_run_at_once(store: Store) -> None:
    seen = a_process("w1", beat_at=100.0)
    store.announce(seen)
    assert store.claim_run(a_run(worker="w1"), live_after=90.0)

    assert store.bury(seen)
    assert store.bury(seen) is False  # marked once
    (buried,) = store.list_processes()
    assert buried.state == "dead"
    # Its heartbeat is still fresh, but a coordinator found it dead: w2 may run it.
    assert store.claim_run(a_run(worker="w2"), live_after=90.0)
    run = store.get_run("j1:main:0:a")
    assert run is not None and run.worker == "w2"


def test_a_process_that_announced_itself_since_it_was_seen_is_not_buried(store: Store) -> None:
    seen = a_process("w1", beat_at=100.0)
    store.announce(seen)
    store.announce(a_process("w1", beat_at=102.0))

    assert store.bury(seen) is False
    assert [p.state for p in store.list_processes()] == ["alive"]
