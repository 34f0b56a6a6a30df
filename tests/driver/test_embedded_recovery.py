"""An embedded job outlives the process that ran it (DESIGN section 3.12): the next
engine opening the same home adopts it and finishes it from the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator import Client
from orchestrator.store import open_store
from tests.support.embedded_job import executions, registry

ROOT = Path(__file__).resolve().parents[2]
N = 40


def start_job(home: Path, tally: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.embedded_job", str(home), str(tally), str(N)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    job_id = json.loads(process.stdout.readline())["job"]
    return process, job_id


def wait_for(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_killed_embedded_process_s_job_is_finished_by_the_next_client_on_its_home(
    tmp_path: Path,
) -> None:
    home, tally = tmp_path / "home", tmp_path / "tally.txt"
    process, job_id = start_job(home, tally)
    try:
        wait_for(lambda: sum(executions(tally).values()) >= 10)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = open_store(None, home)
    try:
        record = store.get_job(job_id)
        assert record is not None and record.status == "running"
        recorded = {
            r.run_id
            for r in store.list_runs(job_id)
            if r.node_id == "tally" and r.status == "succeeded"
        }
    finally:
        store.close()
    assert recorded  # some iterations were recorded before the kill

    with Client.embedded(home, registry=registry()) as client:
        result = client.wait(job_id, timeout=60)
        runs = client.runs(job_id)

    assert result.status == "completed", result.error
    assert result.outputs == {"values": list(range(N))}  # none lost, none repeated
    counts = executions(tally)
    assert sorted(counts) == sorted(f"{job_id}:ticks:{i}:tally" for i in range(N))
    # No run recorded succeeded ran again; runs that finished but were not yet
    # recorded when the process died may have (execution is at-least-once).
    assert {run_id: counts[run_id] for run_id in recorded} == dict.fromkeys(recorded, 1)
    assert all(r.status == "succeeded" for r in runs if r.node == "tally")


def test_a_job_whose_node_types_are_missing_here_is_failed_with_the_reason(
    tmp_path: Path,
) -> None:
    home, tally = tmp_path / "home", tmp_path / "tally.txt"
    process, job_id = start_job(home, tally)
    try:
        wait_for(lambda: sum(executions(tally).values()) >= 3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    with Client.embedded(home) as client:  # built-ins only: no Tally here
        result = client.wait(job_id, timeout=30)

    assert result.status == "failed"
    assert result.error is not None and "Tally" in result.error
