"""`segue jobs show JOB` shows the job's current runs ("Now": queued or running
for a while, DESIGN section 4, States) while it runs, read from the store by
the real `segue` in a child process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator import Client, WorkflowBuilder
from tests.cli.test_cli_jobs_show import segue

pytestmark = pytest.mark.timeout(90)


def test_jobs_show_lists_the_run_going_on_now(tmp_path: Path) -> None:
    home = tmp_path / "home"
    b = WorkflowBuilder("napping")
    ticks = b.node("ticks", "Range", config={"stop": 1})
    nap = b.node("nap", "Sleep", config={"seconds": 30})
    b.edge(ticks["value"], nap["value"])
    b.loop("ticks", pool="thread")
    with Client.embedded(home) as client:
        job = client.submit(b.build())
        deadline = time.monotonic() + 20
        while not [r for r in client.runs(job.id) if r.status == "running"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        text = segue(home, "jobs", "show", job.id).stdout
        shown = json.loads(segue(home, "jobs", "show", job.id, "--json").stdout)
        job.cancel()
        assert job.wait(timeout=60).status == "cancelled"
        after = json.loads(segue(home, "jobs", "show", job.id, "--json").stdout)

    [now] = shown["now"]
    assert {k: now[k] for k in ("run_id", "node", "loop", "iteration", "status", "attempt")} == {
        "run_id": f"{job.id}:ticks:0:nap",
        "node": "nap",
        "loop": "ticks",
        "iteration": 0,
        "status": "running",
        "attempt": 1,
    }
    assert now["worker"] and now["since"]
    assert "Now" in text and "nap" in text and "ticks[0]" in text
    assert after["now"] == []
