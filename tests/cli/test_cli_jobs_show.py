"""`segue jobs show JOB` shows each failed run's error and traceback (DESIGN 3.16),
for a job run embedded in a home as for a cluster's: the real `segue` in a child
process reads the home's store (no services: wake-ups go to a memory broker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Client, Workflow

pytestmark = pytest.mark.timeout(60)

SEGUE = [sys.executable, "-m", "orchestrator.cli"]
FAILING = """\
name: failing
nodes:
  - {id: items, type: Items, config: {items: %s}}
  - {id: check, type: Flaky, config: {fail_on: %s}, retry: {attempts: 2, backoff_s: 0}}
edges:
  - {from: items.item, to: check.value}
loops:
  items: {on_error: continue}
"""


def run_embedded(home: Path, items: list[int], fail_on: list[int]) -> str:
    """Run the failing workflow to its end in ``home``; its job id."""
    workflow = Workflow.loads(FAILING % (items, fail_on))
    with Client.embedded(home) as client:
        job = client.submit(workflow)
        assert job.wait(timeout=30).status == "completed"  # on_error: continue
    return job.id


def segue(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SEGUE_HOME": str(home),
        "SEGUE_BROKER_URL": "memory://cli-show",
        "COLUMNS": "200",
    }
    done = subprocess.run([*SEGUE, *args], capture_output=True, text=True, env=env, timeout=45)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done


def test_jobs_show_prints_a_failed_runs_error_and_the_traceback_through_the_node(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    job = run_embedded(home, [1, 2, 3], fail_on=[2])

    text = segue(home, "jobs", "show", job).stdout
    shown: dict[str, Any] = json.loads(segue(home, "jobs", "show", job, "--json").stdout)

    error = "NodeError: node 'check' (Flaky) fails on purpose for value 2, listed in fail_on"
    assert f"failed check in items[1], attempt 2 ({job}:items:1:check)" in text
    assert f"  {error} (attempt 2)" in text
    lines = text.splitlines()
    start = lines.index("  Traceback (most recent call last):")
    frame = next(line for line in lines[start:] if "transform.py" in line)
    assert frame.startswith("    File ") and frame.endswith(", in run")
    assert f"  nodes.errors.{error} (attempt 2)" in lines[start:]
    [failed] = shown["failed_runs"]
    assert {k: v for k, v in failed.items() if k != "traceback"} == {
        "run_id": f"{job}:items:1:check",
        "loop": "items",
        "iteration": 1,
        "node": "check",
        "status": "failed",
        "attempt": 2,
        "error": f"{error} (attempt 2)",
    }
    assert ", in run\n" in failed["traceback"] and "raise NodeError(" in failed["traceback"]
    assert failed["traceback"].rstrip().endswith(f"nodes.errors.{error} (attempt 2)")


def test_jobs_show_prints_the_first_failed_runs_and_counts_the_rest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = run_embedded(home, list(range(7)), fail_on=list(range(7)))

    text = segue(home, "jobs", "show", job).stdout
    shown = json.loads(segue(home, "jobs", "show", job, "--json").stdout)

    assert len(shown["failed_runs"]) == 7
    assert all(f["traceback"] and f["status"] == "failed" for f in shown["failed_runs"])
    assert text.count("Traceback (most recent call last):") == 5
    assert "… and 2 more failed runs; `segue jobs show --json` lists them all" in text


def test_jobs_show_of_a_job_without_failures_prints_no_failed_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = run_embedded(home, [1, 2], fail_on=[])

    text = segue(home, "jobs", "show", job).stdout
    shown = json.loads(segue(home, "jobs", "show", job, "--json").stdout)

    assert shown["failed_runs"] == []
    assert "Traceback" not in text and "failed check" not in text
