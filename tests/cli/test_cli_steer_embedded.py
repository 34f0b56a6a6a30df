"""One control plane (DESIGN section 3.13): `segue loops pause|resume|stop` and
`segue jobs cancel` steer a job run by `segue run` in another terminal, as they
steer a cluster job. Both sides are real `segue` processes over one home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.store import LoopRecord, open_store
from tests.support.services import redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

SEGUE = [sys.executable, "-m", "orchestrator.cli"]
PACED = """\
name: paced
nodes:
  - {id: ticks, type: Range, config: {stop: 1000, interval_s: 0.1}}
  - {id: out, type: Output, config: {name: values}}
edges:
  - {from: ticks.value, to: out.value}
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A home of this test's own; wake-ups go to a Redis database of its own."""
    with redis_database() as broker:
        yield {
            **os.environ,
            "SEGUE_HOME": str(tmp_path / "home"),
            "SEGUE_BROKER_URL": broker,
            "COLUMNS": "200",
        }


def segue(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEGUE, *args], capture_output=True, text=True, env=env, timeout=60)


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


class Home:
    """The store of a home, read the way another process sees it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.store = open_store(None, Path(env["SEGUE_HOME"]))

    def job(self) -> str:
        eventually(lambda: bool(self.store.list_jobs(status="running")))
        return self.store.list_jobs(status="running")[0].id

    def loop(self, job: str, name: str = "ticks") -> LoopRecord:
        return next(r for r in self.store.list_loops(job) if r.name == name)


def run_in_background(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    flow = tmp_path / "paced.yaml"
    flow.write_text(PACED)
    return subprocess.Popen(
        [*SEGUE, "run", str(flow), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_pause_resume_and_stop_from_another_process_steer_a_segue_run_job(
    env: dict[str, str], tmp_path: Path
) -> None:
    running = run_in_background(env, tmp_path)
    home = Home(env)
    try:
        job = home.job()
        eventually(lambda: home.loop(job).iterations >= 3)

        paused = segue(env, "loops", "pause", job, "ticks")
        assert paused.returncode == 0, paused.stderr
        assert "pausing" in paused.stdout
        eventually(lambda: home.loop(job).status == "paused", timeout=3)
        held = home.loop(job).iterations
        time.sleep(1.0)
        assert home.loop(job).iterations == held  # paused: no new iteration

        resumed = segue(env, "loops", "resume", job, "ticks")
        assert resumed.returncode == 0, resumed.stderr
        eventually(lambda: home.loop(job).iterations > held, timeout=3)

        stopped = segue(env, "loops", "stop", job, "ticks")
        assert stopped.returncode == 0, stopped.stderr
        out, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "completed"
    assert result["loops"]["ticks"]["status"] == "stopped"
    values = result["outputs"]["values"]
    assert values == list(range(len(values)))  # none lost, none repeated
    assert held < len(values) < 1000


def test_cancel_from_another_process_cancels_a_segue_run_job(
    env: dict[str, str], tmp_path: Path
) -> None:
    running = run_in_background(env, tmp_path)
    home = Home(env)
    try:
        job = home.job()
        cancelled = segue(env, "jobs", "cancel", job)
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 1, err
    assert json.loads(out)["status"] == "cancelled"
    assert home.loop(job).status == "cancelled"


def test_resuming_an_ended_loop_is_refused_alike_by_the_cli_and_the_client(
    env: dict[str, str], tmp_path: Path
) -> None:
    from orchestrator import Client, LoopEndedError

    running = run_in_background(env, tmp_path)
    home = Home(env)
    try:
        job = home.job()
        assert segue(env, "loops", "stop", job, "ticks").returncode == 0
        running.communicate(timeout=30)
    finally:
        running.kill()

    refused = segue(env, "loops", "resume", job, "ticks")
    assert refused.returncode != 0
    assert "has ended (stopped); it cannot be resumed" in refused.stdout + refused.stderr
    with Client.embedded(Path(env["SEGUE_HOME"])) as client, pytest.raises(LoopEndedError):
        client.resume_loop(job, "ticks")
    assert home.loop(job).desired == "stopped"


def test_a_job_whose_segue_run_died_is_listed_orphaned_and_steering_says_nothing_drives_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    running = run_in_background(env, tmp_path)
    home = Home(env)
    try:
        job = home.job()
        listed = json.loads(segue(env, "jobs", "list", "--json").stdout)
        assert [(j["job"], j["orphaned"]) for j in listed] == [(job, False)]
        assert listed[0]["driver"] is not None
    finally:
        running.kill()
        running.wait()

    listed = json.loads(segue(env, "jobs", "list", "--json").stdout)
    assert [(j["job"], j["status"], j["driver"], j["orphaned"]) for j in listed] == [
        (job, "running", None, True)
    ]
    table = segue(env, "jobs", "list").stdout
    assert "orphaned" in table and "running" not in table
    paused = segue(env, "loops", "pause", job, "ticks")
    assert paused.returncode == 0, paused.stderr
    assert "is not being driven now (its driver is gone)" in paused.stdout
    assert home.loop(job).desired == "paused"  # recorded for whoever adopts it
