"""A driver found dead by its heartbeats loses its jobs at once (DESIGN section 3,
item 12): the next engine on the store adopts them while their lease still runs.

The first engine stands for a process on another machine that froze or lost
its network: it stops beating without ending its leases."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.engine import Engine
from orchestrator.store import SqlStore
from orchestrator.store.sql.connection import sqlite_url

PACED = Workflow.loads(
    """
    name: paced
    nodes:
      - {id: ticks, type: Range, config: {stop: 30, interval_s: 0.05}}
      - {id: out, type: Output, config: {name: values}}
    edges:
      - {from: ticks.value, to: out.value}
    """
)


def test_a_silent_engine_s_job_is_adopted_before_its_lease_ends(tmp_path: Path) -> None:
    store = SqlStore.open(sqlite_url(tmp_path / "segue.db"))
    artifacts = MemoryArtifactStore()
    first = Engine(store, artifacts, builtin_registry())
    job_id = first.submit(PACED)
    time.sleep(0.3)
    # freeze it: no more beats, no lease renewal, leases kept
    first.steward.stop()
    first.announcer._stop.set()
    first.driver.close()
    record = store.get_job(job_id)
    assert record is not None and record.status == "running"
    lease_until = record.lease_until
    assert lease_until is not None and lease_until > time.time() + 20
    (process,) = [p for p in store.list_processes() if p.name == record.owner]
    store.announce(replace(process, beat_at=time.time() - 16))  # silent past the timeout

    second = Engine(store, artifacts, builtin_registry())
    try:
        result = second.wait(job_id, timeout=30)
        adopted = store.get_job(job_id)
    finally:
        second.close()
        store.close()
    assert time.time() < lease_until, "adopted only once the lease ended"
    assert result.status == "completed"
    assert result.outputs == {"values": list(range(30))}
    assert adopted is not None and adopted.owner != record.owner
