"""Delayed claims: written only for runs still going, never after the run's end."""

from __future__ import annotations

import threading
import time

from orchestrator.store import EventRecord, MemoryStore, RunRecord
from workers.claims import DelayedClaims


def record(node: str) -> RunRecord:
    return RunRecord(
        run_id=f"j:main:0:{node}",
        job_id="j",
        loop="main",
        iteration=0,
        node_id=node,
        type_name="Sleep",
        status="running",
        attempt=1,
    )


def test_a_claim_settled_before_its_delay_is_never_written() -> None:
    store = MemoryStore()
    claims = DelayedClaims(store, delay_s=0.05)
    claims.settle(claims.later(lambda: record("quick")))
    time.sleep(0.2)
    assert store.get_run("j:main:0:quick") is None
    claims.close()


def test_a_claim_not_settled_within_its_delay_is_written() -> None:
    store = MemoryStore()
    claims = DelayedClaims(store, delay_s=0.05)
    pending = claims.later(lambda: record("slow"))
    deadline = time.monotonic() + 5
    while store.get_run("j:main:0:slow") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stored = store.get_run("j:main:0:slow")
    assert stored is not None and stored.status == "running"
    claims.settle(pending)
    claims.close()


class SlowClaims(MemoryStore):
    """A store whose claim takes until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.release = threading.Event()

    def claim_run(
        self, run: RunRecord, live_after: float | None = None, event: EventRecord | None = None
    ) -> bool:
        self.writing.set()
        self.release.wait(5)
        return super().claim_run(run, live_after, event)


def test_settling_waits_for_a_claim_being_written() -> None:
    store = SlowClaims()
    claims = DelayedClaims(store, delay_s=0.01)
    pending = claims.later(lambda: record("n"))
    assert store.writing.wait(5)
    settled = threading.Event()

    def settle() -> None:
        claims.settle(pending)
        settled.set()

    thread = threading.Thread(target=settle)
    thread.start()
    assert not settled.wait(0.2)  # the claim is still being written
    store.release.set()
    assert settled.wait(5)
    thread.join()
    stored = store.get_run("j:main:0:n")
    assert stored is not None and stored.status == "running"  # landed before the end
    claims.close()


def test_claims_come_due_in_order_of_their_deadlines() -> None:
    store = MemoryStore()
    claims = DelayedClaims(store, delay_s=0.05)
    first = claims.later(lambda: record("a"))
    claims.settle(first)
    second = claims.later(lambda: record("b"))
    deadline = time.monotonic() + 5
    while store.get_run("j:main:0:b") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert store.get_run("j:main:0:a") is None
    claims.settle(second)
    claims.close()
