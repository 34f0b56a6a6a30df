"""`segue logs JOB` (DESIGN 3.16, section 6): a job's run logs and its failed runs'
tracebacks, filtered by loop, node and level, as text or JSON, and --follow
until the job ends; the real `segue` in a child process reads the home's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nodes.library import builtin_registry
from orchestrator import Client, Node, Ports, RunContext, WorkflowBuilder
from orchestrator.logs import LogFollower
from orchestrator.views import LogLine

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


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SEGUE_HOME": str(home),
        "SEGUE_BROKER_URL": "memory://cli-logs",
        "COLUMNS": "200",
    }


def segue(home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*SEGUE, *args], capture_output=True, text=True, env=_env(home), timeout=45
    )
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


GATE = threading.Event()
"""Lets :class:`Gated`'s third run end."""


class Gated(Node):
    """Logs its value; fails for good on 2; on 3 waits for :data:`GATE`, then
    a little longer, so that a follower reads the job again after a failure."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.info("got %s", inputs.value)
        if inputs.value == 2:
            raise ValueError("no twos")
        if inputs.value == 3:
            GATE.wait(30)
            time.sleep(1.5)  # three more polls of `segue logs --follow` (every 0.5 s)
        return self.Outputs(value=inputs.value)


def test_logs_follow_prints_each_record_and_each_traceback_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = builtin_registry().copy()
    registry.register(Gated)
    b = WorkflowBuilder("gated")
    items = b.node("items", "Items", config={"items": [1, 2, 3]})
    gated = b.node("gated", "Gated", retry={"attempts": 1})
    b.edge(items["item"], gated["value"])
    b.loop("items", on_error="continue")
    GATE.clear()
    rows: list[dict[str, Any]] = []
    with Client.embedded(home, registry=registry) as client:
        job = client.submit(b.build())
        follow = subprocess.Popen(
            [*SEGUE, "logs", job.id, "--follow", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(home),
        )
        try:
            assert follow.stdout is not None
            for line in follow.stdout:  # until the failed run's traceback is printed
                rows.append(json.loads(line))
                if rows[-1]["logger"] == "traceback":
                    break
            GATE.set()
            rest, errors = follow.communicate(timeout=45)
        finally:
            GATE.set()
            if follow.poll() is None:
                follow.kill()
        assert follow.returncode == 0, errors
        rows += [json.loads(line) for line in rest.splitlines()]
        assert job.wait(timeout=30).status == "completed"

    printed = [(r["iteration"], r["logger"], r["message"].splitlines()[-1]) for r in rows]
    assert sorted(printed) == [
        (0, "segue.node", "got 1"),
        (1, "segue.node", "got 2"),
        (1, "traceback", "ValueError: no twos"),
        (2, "segue.node", "got 3"),
    ]


def _line(run: str, attempt: int, id_: int, logger: str = "segue.node") -> LogLine:
    return LogLine(
        id=id_, at=float(id_), run_id=run, loop="items", iteration=0, node="talk",
        attempt=attempt, level="INFO", logger=logger, message=f"{run} {attempt} {id_}",
    )  # fmt: skip


def test_a_follower_hands_out_records_by_id_and_each_attempts_traceback_once() -> None:
    stored = [_line("r1", 1, 1), _line("r1", 1, 2)]
    tracebacks = [_line("r1", 1, 0, "traceback")]
    asked: list[int] = []

    def read(after: int) -> list[LogLine]:  # as Client.logs: every traceback, every time
        asked.append(after)
        return [line for line in stored if line.id > after] + tracebacks

    follower = LogFollower(read)
    assert follower.read() == [*stored, tracebacks[0]]
    assert follower.read() == []
    stored.append(_line("r1", 2, 3))
    tracebacks.append(_line("r1", 2, 0, "traceback"))
    assert follower.read() == [stored[2], tracebacks[1]]
    assert asked == [0, 2, 2]
