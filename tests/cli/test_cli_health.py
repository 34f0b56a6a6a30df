"""Node health is one function wherever it is shown: the in-process client of the
engine that ran the job and `segue nodes health` in another process agree,
including a node whose last run failed at a low error rate (once reported
`healthy` by the CLI and `failing` in-process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Client, Workflow
from tests.support.services import redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

FLOW = """\
name: health-surfaces
nodes:
  - {id: source, type: Items, config: {items: [1, 2, 3, 4]}}
  - {id: sound, type: Sleep, config: {seconds: 0}}
  - {id: check, type: Flaky, config: {fail_on: [4]}}
  - {id: shaky, type: Flaky, config: {fail_on: [1, 2, 3]}}
edges:
  - {from: source.item, to: sound.value}
  - {from: sound.value, to: check.value}
  - {from: source.item, to: shaky.value}
loops:
  source: {on_error: continue}
"""


def test_the_engine_and_the_cli_report_the_same_node_health(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Client.embedded(home) as client:
        job = client.submit(Workflow.loads(FLOW))
        assert job.wait(timeout=60).status == "completed"
        in_process = client.node_health(job.id)

    with redis_database() as broker:
        env = {**os.environ, "SEGUE_HOME": str(home), "SEGUE_BROKER_URL": broker}
        shown = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "nodes", "health", job.id, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert shown.returncode == 0, shown.stderr

    assert json.loads(shown.stdout) == in_process
    assert in_process["check"] == {
        "health": "failing",
        "succeeded": 3,
        "failed": 1,
        "error_rate": 0.25,
    }
    # its last run passed, but 3 of its 4 failed
    assert (in_process["shaky"]["health"], in_process["shaky"]["error_rate"]) == ("failing", 0.75)
    assert in_process["sound"]["health"] == "healthy"
