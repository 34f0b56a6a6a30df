"""Renewing leases: a job that ended in the store before its driver let go of it is
not "lost to another driver" (the warning, and dropping the job, were false)."""

from __future__ import annotations

import logging
import time

import pytest

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator import Workflow
from orchestrator.engine import Engine
from orchestrator.store import MemoryStore

SLOW = Workflow.loads(
    """
    name: slow
    nodes:
      - {id: one, type: Constant, config: {value: 1}}
      - {id: nap, type: Sleep, config: {seconds: 1.0}}
      - {id: out, type: Output, config: {name: out}}
    edges:
      - {from: one.value, to: nap.value}
      - {from: nap.value, to: out.value}
    """
)


def test_an_ended_job_still_driven_here_is_kept_not_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    engine = Engine(store, MemoryArtifactStore(), builtin_registry())
    try:
        job_id = engine.submit(SLOW)
        time.sleep(0.2)
        # the store shows the job ended while the driver still holds it (the moment
        # between its end being recorded and the driver letting go of it)
        store.update_job(job_id, status="cancelled", at=time.time())
        with caplog.at_level(logging.WARNING, logger="segue"):
            assert engine.steward.renew() == []
        assert job_id in engine.driver.driving()
        assert "lost the lease" not in caplog.text
    finally:
        engine.close()


def test_a_job_another_driver_leased_is_let_go() -> None:
    store = MemoryStore()
    engine = Engine(store, MemoryArtifactStore(), builtin_registry())
    try:
        job_id = engine.submit(SLOW)
        time.sleep(0.2)
        store.lease_job(job_id, engine.steward.owner, 0.0, time.time())  # its lease ran out
        assert store.lease_job(job_id, "other@there:9", time.time() + 30, time.time())
        assert engine.steward.renew() == [job_id]
        assert job_id not in engine.driver.driving()
    finally:
        engine.close()
