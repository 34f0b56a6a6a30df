"""A driver that dies holding queue messages loses none and doubles none
(DESIGN 3.5: delivery survives a coordinator restart; 3.12: a dead driver's
jobs are adopted).

A driver acknowledges a message once its journal holds the iteration that
consumed it, and sends the runs decided on a message once the journal holds
the message. The driver taking the job over acknowledges the messages its
journal shows consumed and gives the others back at the head of their group,
in order. Each scenario kills a real process at its first acknowledgement
(right after it, or instead of it) while its journal lags, then lets a fresh
engine adopt the job over the same Redis database and prefix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.artifacts import open_artifacts
from orchestrator.engine.engine import Engine
from orchestrator.queues import KombuQueueBackend
from orchestrator.queues.kombu_names import QueueNames
from orchestrator.store import open_store
from tests.support.embedded_job import executions, registry
from tests.support.queue_job import MODES
from tests.support.services import redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]
N = 6


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with redis_database() as url:
        yield url


def run_until_first_ack(home: Path, broker: str, prefix: str, tally: Path, mode: str) -> str:
    arguments = [str(home), broker, prefix, str(tally), str(N), mode]
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.queue_job", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return str(json.loads(child.stdout.splitlines()[0])["job"])


@pytest.mark.parametrize("mode", MODES)
def test_a_job_taken_over_gets_each_queue_message_once(
    tmp_path: Path, broker: str, mode: str
) -> None:
    home, tally, prefix = tmp_path / "home", tmp_path / "tally.txt", f"test.{uuid.uuid4().hex}"
    job_id = run_until_first_ack(home, broker, prefix, tally, mode)
    assert executions(tally), "the dead process ran an iteration"

    store = open_store(None, home)
    with KombuQueueBackend(broker, prefix) as queues:
        engine = Engine(store, open_artifacts(str(home / "artifacts")), registry(), queues=queues)
        try:
            result = engine.wait(job_id, timeout=60)
        finally:
            engine.close()

    assert result.status == "completed", result.error
    assert sorted(result.outputs["got"]) == list(range(N))  # none lost, none doubled
    counts = executions(tally)
    assert counts == {f"{job_id}:take:{i}:tally": 1 for i in range(N)}  # each ran once
    names = QueueNames(prefix)
    client = redis.Redis.from_url(broker)
    try:
        assert client.zcard(names.transport_key("unacked_index")) == 0  # nothing left held
    finally:
        client.close()
