"""`segue logs JOB` (DESIGN 3.16, section 6): a job's run logs and its failed runs'
tracebacks, filtered by loop, node and level, as text or JSON, and --follow
until the job ends; the real `segue` in a child process reads the home's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nodes.library import builtin_registry
from orchestrator import Client, Node, Ports, RunContext, WorkflowBuilder

pytestmark = pytest.mark.timeout(90)

SEGUE = [sys.executable, "-m", "orchestrator.cli"]


class Talker(Node):
    """Logs and prints its value; fails for good on 2."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.info("got %s", inputs.value)
        print(f"printed {inputs.value}")
        if inputs.value == 2:
            ctx.logger.error("two is too many")
            raise ValueError("no twos")
        return self.Outputs(value=inputs.value)


def run_job(home: Path) -> str:
    registry = builtin_registry().copy()
    registry.register(Talker)
    b = WorkflowBuilder("talking")
    items = b.node("items", "Items", config={"items": [1, 2, 3]})
    talk = b.node("talk", "Talker", retry={"attempts": 1})
    b.edge(items["item"], talk["value"])
    b.loop("items", on_error="continue")
    with Client.embedded(home, registry=registry) as client:
        job = client.submit(b.build())
        assert job.wait(timeout=30).status == "completed"
    return job.id


def segue(home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SEGUE_HOME": str(home),
        "SEGUE_BROKER_URL": "memory://cli-logs",
        "COLUMNS": "200",
    }
    done = subprocess.run([*SEGUE, *args], capture_output=True, text=True, env=env, timeout=45)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("logs") / "home"
    return home, run_job(home)


def test_logs_prints_each_runs_records_and_the_failed_runs_traceback(
    job: tuple[Path, str],
) -> None:
    home, job_id = job
    text = segue(home, "logs", job_id).stdout

    for value in (1, 2, 3):
        assert f"INFO     items[{value - 1}] talk segue.node got {value}" in text
        assert f"INFO     items[{value - 1}] talk stdout printed {value}" in text
    assert "ERROR    items[1] talk segue.node two is too many" in text
    assert "ERROR    items[1] talk traceback Traceback (most recent call last):" in text
    assert "ValueError: no twos" in text


def test_logs_filters_by_node_loop_and_level_and_prints_json(job: tuple[Path, str]) -> None:
    home, job_id = job
    rows = [
        json.loads(line)
        for line in segue(home, "logs", job_id, "--json", "--level", "error").stdout.splitlines()
    ]
    assert [(r["node"], r["iteration"], r["logger"], r["level"]) for r in rows] == [
        ("talk", 1, "segue.node", "ERROR"),
        ("talk", 1, "traceback", "ERROR"),
    ]
    assert set(rows[0]) == {
        "id", "at", "run_id", "loop", "iteration", "node", "attempt", "level", "logger", "message",
    }  # fmt: skip
    assert segue(home, "logs", job_id, "--node", "items").stdout == ""
    assert segue(home, "logs", job_id, "--loop", "main").stdout == ""
    assert "got 1" in segue(home, "logs", job_id, "--loop", "items", "--follow").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no job 'nope'"),
        (["{job}", "--loop", "nope"], "has no loop 'nope'; its loops: main, items"),
        (["{job}", "--node", "nope"], "has no node 'nope'; its nodes: items, talk"),
        (["{job}", "--level", "loud"], "unknown log level 'loud'"),
    ],
)
def test_logs_names_what_it_cannot_find(
    job: tuple[Path, str], args: list[str], message: str
) -> None:
    home, job_id = job
    done = segue(home, "logs", *[a.format(job=job_id) for a in args], code=2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
