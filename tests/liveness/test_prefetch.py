"""Runs a dead worker took off a busy queue before it announced them (DESIGN 3.12).

:class:`Prefetch` is given what waits in each queue; the heartbeats and what
was sent when decide the rest. Times are seconds; heartbeats every 2 s (slack
1 s), timeout 15 s. Worker ``w1`` died at about 100 (its last beat); ``w2``
lives and beats every 2 s; the queue stays busy throughout.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.coordinator.prefetch import Prefetch
from orchestrator.liveness import Flight
from orchestrator.store import ProcessRecord
from tests.liveness.test_lost_runs import sent, worker

INTERVAL, TIMEOUT = 2.0, 15.0


class Queues:
    """What waits in each queue, as a test sets it; ``None``: the broker cannot tell."""

    def __init__(self, **waiting: set[str] | None) -> None:
        self.waiting = waiting
        self.asked: list[str] = []

    def __call__(self, queue: str) -> set[str] | None:
        self.asked.append(queue)
        return self.waiting.get(queue, set())


def dead(beat_at: float = 100.0) -> ProcessRecord:
    return replace(worker("w1", beat_at), state="dead")


def live(beat_at: float, *holds: str) -> ProcessRecord:
    return worker("w2", beat_at, *holds)


def check(
    prefetch: Prefetch, flights: list[Flight], processes: list[ProcessRecord], now: float
) -> dict[str, str]:
    return {lost.flight.run_id: lost.reason for lost in prefetch.lost(flights, processes, now)}


def test_a_run_that_left_its_queue_unheld_is_lost_once_every_consumer_beat_since() -> None:
    queues = Queues(thread={"r3", "r4"})
    prefetch = Prefetch(queues, INTERVAL, TIMEOUT)
    flights = [sent("r1", 99.5), sent("r2", 99.5), sent("r3", 99.6), sent("r4", 99.7)]
    # r1 and r2 left the queue; nobody holds them: seen absent at 101 ...
    assert check(prefetch, flights, [dead(), live(100.5, "r0")], now=101.0) == {}
    # ... w2 has not beaten since: it may have taken them and not said so yet.
    assert check(prefetch, flights, [dead(), live(101.5, "r0")], now=102.0) == {}
    found = check(prefetch, flights, [dead(), live(102.5, "r0")], now=103.0)
    assert set(found) == {"r1", "r2"}
    assert "w1" in found["r1"] and "left its queue" in found["r1"]


def test_a_run_a_live_worker_took_meanwhile_is_not_lost() -> None:
    prefetch = Prefetch(Queues(thread=set()), INTERVAL, TIMEOUT)
    flights = [sent("r1", 99.5)]
    assert check(prefetch, flights, [dead(), live(100.5)], now=101.0) == {}
    assert check(prefetch, flights, [dead(), live(102.5, "r1")], now=103.0) == {}
    assert check(prefetch, flights, [dead(), live(104.5, "r1")], now=105.0) == {}


def test_a_run_back_in_its_queue_is_not_lost() -> None:
    queues = Queues(thread=set())
    prefetch = Prefetch(queues, INTERVAL, TIMEOUT)
    flights = [sent("r1", 99.5)]
    assert check(prefetch, flights, [dead(), live(100.5)], now=101.0) == {}
    queues.waiting["thread"] = {"r1"}  # the visibility sweep gave it back, say
    assert check(prefetch, flights, [dead(), live(102.5)], now=103.0) == {}
    queues.waiting["thread"] = set()  # taken again: absent from now on, not from 101
    assert check(prefetch, flights, [dead(), live(103.5)], now=104.0) == {}
    assert set(check(prefetch, flights, [dead(), live(105.5)], now=106.0)) == {"r1"}


def test_runs_sent_after_the_dead_worker_was_gone_are_not_probed() -> None:
    queues = Queues(thread=set())
    prefetch = Prefetch(queues, INTERVAL, TIMEOUT)
    flights = [sent("r1", 110.0)]  # w1 beat last at 100: it took nothing sent at 110
    assert check(prefetch, flights, [dead(), live(111.5)], now=112.0) == {}
    assert check(prefetch, flights, [dead(), live(113.5)], now=114.0) == {}
    assert queues.asked == []


def test_nothing_is_probed_without_a_dead_worker_or_for_a_run_just_sent() -> None:
    queues = Queues(thread=set())
    prefetch = Prefetch(queues, INTERVAL, TIMEOUT)
    assert check(prefetch, [sent("r1", 90.0)], [live(100.5)], now=101.0) == {}
    assert check(prefetch, [sent("r2", 100.8)], [dead(), live(100.5)], now=101.0) == {}
    assert queues.asked == []


def test_a_broker_that_cannot_tell_chases_nothing() -> None:
    prefetch = Prefetch(Queues(thread=None), INTERVAL, TIMEOUT)
    flights = [sent("r1", 99.5)]
    for now in (101.0, 103.0, 105.0):
        assert check(prefetch, flights, [dead(), live(now - 0.5)], now) == {}


def test_a_queue_with_no_live_consumer_waits_for_one() -> None:
    prefetch = Prefetch(Queues(thread=set()), INTERVAL, TIMEOUT)
    flights = [sent("r1", 99.5)]
    assert check(prefetch, flights, [dead()], now=101.0) == {}
    assert check(prefetch, flights, [dead()], now=103.0) == {}
    assert set(check(prefetch, flights, [dead(), live(103.5)], now=104.0)) == {"r1"}
