"""A run's in-flight events follow its row's states, in every store (DESIGN
section 4, States: a run shows ``queued``, then ``running``).

In a cluster the coordinator writes a run's ``queued`` state
(:func:`~orchestrator.inflight.keep_in_flight`) while a worker that has
started the run writes its claim (:class:`~workers.claims.DelayedClaims`).
Their rows are ordered by the store's conditional writes; each state's event
must be written with its row, or a claim landing between the queued row and
its event shows ``running`` before ``queued``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from orchestrator.inflight import keep_in_flight
from orchestrator.store import EventRecord, MemoryStore, RunRecord, Store
from workers.claims import DelayedClaims

RUN = "j1:main:0:n"
QUEUED = {"status": "queued", "attempt": 1, "type": "Sleep", "queue": "process", "at": 1.0}


def _claim() -> RunRecord:
    return RunRecord(RUN, "j1", "main", 0, "n", "Sleep", "running", 1, worker="w1", started_at=1.1)


def _states(store: Store) -> list[str | None]:
    return [e.status for e in store.read_events("j1") if e.run_id == RUN]


class ClaimAfterQueuedRow:
    """A store that lets a worker's claim in as soon as a queued state is written,
    before the in-flight call returns: the writes in the order that lost the race."""

    def __init__(self, store: Store, claims: DelayedClaims) -> None:
        self.store = store
        self.claims = claims

    def record_in_flight(self, states: Any) -> list[bool]:
        written = self.store.record_in_flight(states)
        if any(written):
            pending = self.claims.later(_claim)
            deadline = time.monotonic() + 10
            while "running" not in _states(self.store):  # the claim and its event landed
                assert time.monotonic() < deadline, "the claim was never written"
                time.sleep(0.005)
            self.claims.settle(pending)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_claim_written_right_after_a_queued_row_shows_after_its_event(store: Store) -> None:
    claims = DelayedClaims(store, delay_s=0.01)
    racing = cast(Store, ClaimAfterQueuedRow(store, claims))

    events = keep_in_flight(racing, [(RUN, QUEUED)])
    claims.close()

    assert [event.status for event in events] == ["queued"]
    assert _states(store) == ["queued", "running"]
    stored = store.get_run(RUN)
    assert stored is not None and stored.status == "running" and stored.worker == "w1"


def test_a_claim_that_comes_while_a_queued_state_is_written_waits_for_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold the queued state between its row and its event; the worker's claim
    # comes meanwhile and must land wholly after it.
    holding, release, claiming = threading.Event(), threading.Event(), threading.Event()
    name = "append_events" if isinstance(store, MemoryStore) else "_write_events"
    write_events = getattr(store, name)
    claim_run = store.claim_run

    def held(*args: Any) -> None:
        if any(e.status == "queued" for e in args[-1]):
            holding.set()
            assert release.wait(10)
        write_events(*args)

    def watched(run: RunRecord, *args: Any, **kwargs: Any) -> bool:
        claiming.set()
        return claim_run(run, *args, **kwargs)

    monkeypatch.setattr(store, name, held)
    monkeypatch.setattr(store, "claim_run", watched)
    queuer = threading.Thread(target=keep_in_flight, args=(store, [(RUN, QUEUED)]))
    queuer.start()
    assert holding.wait(10), "the queued row is written, its event held"
    claims = DelayedClaims(store, delay_s=0.01)
    pending = claims.later(_claim)
    assert claiming.wait(10), "the worker's claim went to the store"
    time.sleep(0.2)  # room for a claim that does not wait to land (it must not)
    release.set()
    queuer.join(10)
    claims.settle(pending)  # waits until the claim is written
    claims.close()

    assert _states(store) == ["queued", "running"]
    stored = store.get_run(RUN)
    assert stored is not None and stored.status == "running"


def test_a_state_and_its_event_are_written_together_or_not_at_all(store: Store) -> None:
    queued = RunRecord(RUN, "j1", "main", 0, "n", "Sleep", "queued", 1)
    event = EventRecord(job_id="j1", kind="run", at=1.0, node="n", run_id=RUN, status="queued")

    assert store.queue_run(queued, event)
    assert not store.queue_run(queued, event), "the same attempt again: no second event"
    running = EventRecord(**{**vars(event), "status": "running"})
    assert store.claim_run(_claim(), live_after=0.0, event=running), "a guarded claim too"
    store.record_runs([RunRecord(RUN, "j1", "main", 0, "n", "Sleep", "succeeded", 1)])
    assert not store.claim_run(_claim(), event=running), "never over a finished run"
    assert not store.queue_run(RunRecord(**{**vars(queued), "attempt": 2}), event)

    assert _states(store) == ["queued", "running"]


def test_states_reported_together_are_written_together_each_with_its_event(
    store: Store,
) -> None:
    # The coordinator reports every run queued longer than a moment in one batch
    # (a fan-in queues hundreds at once): one transaction, each state's row by its
    # own rule, an event for each row written and none for a refused one.
    finished = RunRecord("j1:main:0:done", "j1", "main", 0, "done", "Sleep", "succeeded", 1)
    store.record_runs([finished])
    states = [
        (RUN, QUEUED),
        ("j1:main:0:m", {**QUEUED, "status": "running", "worker": "w1", "at": 1.2}),
        ("j1:main:0:done", QUEUED),
    ]

    events = keep_in_flight(store, states)

    assert [(e.run_id, e.status) for e in events] == [
        (RUN, "queued"),
        ("j1:main:0:m", "running"),
    ]
    stored = [(e.run_id, e.status) for e in store.read_events("j1")]
    assert stored == [(RUN, "queued"), ("j1:main:0:m", "running")]
    assert store.get_run(RUN).status == "queued"  # type: ignore[union-attr]
    assert store.get_run("j1:main:0:m").worker == "w1"  # type: ignore[union-attr]
    assert store.get_run("j1:main:0:done").status == "succeeded"  # type: ignore[union-attr]
    assert keep_in_flight(store, []) == []
