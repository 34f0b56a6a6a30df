"""Which dispatched runs no live worker will report (DESIGN section 3, item 12).

:func:`lost_runs` is pure: what was sent when, and every process's last
heartbeat, decide. Times below are seconds; the timeout is 15 s, the slack 1 s.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.liveness import Flight, lost_runs
from orchestrator.store import ProcessRecord

TIMEOUT, SLACK = 15.0, 1.0


def worker(
    name: str, beat_at: float, *holds: str, idle_since: float | None = None, **more: object
) -> ProcessRecord:
    record = ProcessRecord(
        name=name,
        kind="worker",
        host="elsewhere",
        pid=1,
        started_at=0.0,
        beat_at=beat_at,
        holds=holds,
        queues=("thread",),
        idle_since=idle_since,
    )
    return replace(record, **more)  # type: ignore[arg-type]


def sent(run_id: str, at: float, queue: str = "thread") -> Flight:
    return Flight("j", run_id, queue, at)


def lost(flights: list[Flight], processes: list[ProcessRecord], now: float) -> dict[str, str]:
    return {f.run_id: reason for f, reason in lost_runs(flights, processes, now, TIMEOUT, SLACK)}


def test_a_run_a_live_worker_holds_is_never_lost_however_long_it_runs() -> None:
    processes = [worker("a", 10_000.0, "r1"), worker("b", 10_000.0, idle_since=0.0)]

    assert lost([sent("r1", 1.0)], processes, now=10_000.5) == {}


def test_the_runs_of_a_worker_silent_past_the_timeout_are_lost() -> None:
    processes = [worker("a", 20.0, "r1", "r2"), worker("b", 36.0, "r3")]

    found = lost([sent("r1", 10.0), sent("r2", 19.0), sent("r3", 12.0)], processes, now=35.5)

    assert set(found) == {"r1", "r2"} and "worker a is gone" in found["r1"]


def test_a_stopped_worker_is_dead_at_once() -> None:
    processes = [worker("a", 20.0, "r1", state="stopped")]

    assert set(lost([sent("r1", 10.0)], processes, now=20.1)) == {"r1"}


def test_a_worker_silent_for_less_than_the_timeout_still_holds_its_runs() -> None:
    processes = [worker("a", 20.0, "r1")]

    assert lost([sent("r1", 10.0)], processes, now=34.9) == {}


def test_a_run_sent_again_after_its_dead_holder_last_beat_is_not_lost_again() -> None:
    processes = [worker("a", 20.0, "r1")]  # dead; it took an earlier delivery of r1

    assert lost([sent("r1", 40.0)], processes, now=40.5) == {}


def test_an_unheld_run_is_lost_once_a_consumer_of_its_queue_idles_past_the_slack() -> None:
    # r1 was taken from the queue and vanished (a prefetch buffer of a worker that
    # died before announcing it, or a pop the broker never booked as unacked)
    idle = worker("b", 12.5, idle_since=5.0)

    assert set(lost([sent("r1", 11.0)], [idle], now=13.0)) == {"r1"}
    assert lost([sent("r1", 12.0)], [idle], now=13.0) == {}  # sent 0.5 s before the beat


def test_an_unheld_run_waits_while_every_consumer_is_busy_a_backlog_is_not_a_loss() -> None:
    busy = [worker("a", 50.0, "r0"), worker("b", 50.0, "r9")]

    assert lost([sent("r1", 1.0)], busy, now=50.5) == {}


def test_an_unheld_run_waits_until_every_consumer_announced_after_it_was_sent() -> None:
    # c may have taken r1 after its last beat: wait for its next one
    processes = [worker("b", 20.0, idle_since=1.0), worker("c", 10.5)]

    assert lost([sent("r1", 10.0)], processes, now=20.5) == {}
    processes[1] = worker("c", 11.5)  # its next beat: it does not hold r1
    assert set(lost([sent("r1", 10.0)], processes, now=20.5)) == {"r1"}


def test_only_consumers_of_the_run_queue_count() -> None:
    other_queue = worker("b", 30.0, idle_since=1.0, queues=("gpu",))

    assert lost([sent("r1", 10.0)], [other_queue], now=30.5) == {}
    assert lost([sent("r1", 10.0, queue="gpu")], [other_queue], now=30.5) != {}


def test_a_run_held_by_a_live_prefork_child_is_not_lost() -> None:
    child = worker("child", 30.0, "r1", queues=())
    idle_parent = worker("parent", 30.0, idle_since=1.0)

    assert lost([sent("r1", 10.0)], [child, idle_parent], now=30.5) == {}


def test_drivers_are_not_workers_their_holds_are_jobs() -> None:
    coordinator = worker("c", 1.0, "r1", kind="coordinator", queues=())

    assert lost([sent("r1", 0.5)], [coordinator], now=100.0) == {}
