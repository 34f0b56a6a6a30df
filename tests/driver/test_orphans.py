"""Settling a dead driver's queue messages against its job's journal
(:mod:`orchestrator.driver.orphans`): consumed ones are acknowledged, the others
given back; on a shared queue, given back only when no other driver is alive."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from orchestrator.driver.journal import INPUT_KIND, entry
from orchestrator.driver.orphans import Orphans
from orchestrator.queues import MemoryQueueBackend
from orchestrator.results import RunResult
from orchestrator.store.base import EventRecord
from tests.scheduler.scheduler_harness import plan_of

JOB = "j1"
PLAN = plan_of(
    """
    name: orphans
    nodes:
      - {id: items, type: Range, config: {stop: 3}}
      - {id: push, type: QueueWriter, config: {queue: own}}
      - {id: take, type: QueueReader, config: {queue: own}}
      - {id: inbox, type: QueueReader, config: {queue: feed, scope: global, group: g}}
      - {id: a, type: Output, config: {name: a}}
      - {id: b, type: Output, config: {name: b}}
    edges:
      - {from: items.value, to: push.value}
      - {from: take.item, to: a.value}
      - {from: inbox.item, to: b.value}
    """
)


class Held(MemoryQueueBackend):
    """Orphans as a broker would list them; records what is settled."""

    def __init__(self, orphans: dict[tuple[str, str], list[str]]) -> None:
        super().__init__()
        self.held = orphans
        self.settled: list[tuple[str, str, set[str], bool]] = []

    def orphans(self, queue: str, group: str) -> list[str]:
        return list(self.held.get((queue, group), []))

    def reclaim(
        self, queue: str, group: str, consumed: Collection[str], give_back: bool = True
    ) -> int:
        self.settled.append((queue, group, set(consumed), give_back))
        rest = [m for m in self.held.get((queue, group), []) if m not in consumed]
        return len(rest) if give_back else 0


def received(run_id: str, message_id: str) -> EventRecord:
    event = RunResult(run_id, 1, "succeeded", {"item": 1}, delivery=f"{message_id}#0.tag")
    record = entry(JOB, event, 1.0)
    assert record is not None and record.kind == INPUT_KIND
    return record


JOURNAL = [
    received(f"{JOB}:take:0:take", "w0"),
    received(f"{JOB}:inbox:0:inbox", "x0"),
    received(f"{JOB}:inbox:1:inbox", "x1"),
]


def settle(queues: Held, alone: bool) -> tuple[int, int]:
    orphans = Orphans(JOB, PLAN, queues, lambda: alone)
    assert bool(orphans)
    assert list(orphans.noting(JOURNAL)) == JOURNAL  # the journal passes through unchanged
    return orphans.reclaim()


@pytest.mark.parametrize("alone", [True, False])
def test_consumed_orphans_are_acknowledged_others_given_back(alone: bool) -> None:
    queues = Held({(f"{JOB}:own", "take"): ["w0", "w1"], ("feed", "g"): ["x1", "x2"]})

    acknowledged, given = settle(queues, alone)

    assert queues.settled == [
        (f"{JOB}:own", "take", {"w0"}, True),  # the job's own queue: only it reads it
        ("feed", "g", {"x1"}, alone),  # shared: x2 may be a live reader's, unless alone
    ]
    assert (acknowledged, given) == (2, 2 if alone else 1)


def test_nothing_held_asks_nothing() -> None:
    queues = Held({})
    orphans = Orphans(JOB, PLAN, queues, lambda: pytest.fail("no need to ask"))

    assert not orphans
    assert orphans.reclaim() == (0, 0)
    assert queues.settled == []
