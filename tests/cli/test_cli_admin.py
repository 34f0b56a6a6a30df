"""The admin command line of distributed mode (DESIGN section 6), run as a user's
shell runs it - the real ``segue`` in a child process - against the session's
real cluster: submit, jobs, loops, nodes health, queues and events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.client import Client, LoopInfo
from orchestrator.store import open_store
from tests.support.cluster import Cluster

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICKSTART = EXAMPLES / "quickstart.yaml"
TWO_LOOPS = EXAMPLES / "two-loops-queue.yaml"
SEGUE = [sys.executable, "-m", "orchestrator.cli"]

PACED = """\
name: paced
nodes:
  - {id: ticks, type: Range, config: {stop: 200, interval_s: 0.05}}
  - {id: out, type: Output, config: {name: values}}
edges:
  - {from: ticks.value, to: out.value}
"""

FAILING = """\
name: failing
nodes:
  - {id: zero, type: Constant, config: {value: 0}}
  - {id: minus, type: Constant, config: {value: -1}}
  - {id: bad, type: Math, config: {op: pow}}
edges:
  - {from: zero.value, to: bad.a}
  - {from: minus.value, to: bad.b}
"""

INVALID = """\
name: invalid
nodes:
  - {id: ticks, type: Range, config: {stop: 5, step: 0}}
  - {id: sq, type: Maht}
edges:
  - {from: ticks.value, to: sq.a}
"""


def segue(cluster: Cluster, *args: str, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    """``segue ARGS`` with the cluster's environment."""
    return subprocess.run(
        [*SEGUE, *args],
        capture_output=True,
        text=True,
        cwd=cluster.root,
        env={**cluster.env, "COLUMNS": "200"},
        timeout=timeout,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have exited 0."""
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def submit(cluster: Cluster, flow: Path, *args: str) -> str:
    """Submit ``flow`` through the CLI; the job id it prints."""
    return str(json.loads(ok(segue(cluster, "submit", str(flow), "--json", *args)))["job"])


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def loop_info(client: Client, job: str, name: str) -> LoopInfo:
    """One loop of a job, read directly from the store."""
    return next(i for i in client.loops(job) if i.name == name)


def listed(cluster: Cluster, job: str) -> dict[str, dict[str, Any]]:
    """``segue loops list JOB --json`` by loop name."""
    loops = json.loads(ok(segue(cluster, "loops", "list", job, "--json")))
    assert all(set(loop) == {"name", "status", "iterations", "failed_iterations"} for loop in loops)
    return {loop["name"]: loop for loop in loops}


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[Client]:
    """A client of the cluster, for what the tests watch besides the CLI."""
    with cluster.client() as opened:
        yield opened


@pytest.fixture
def paced(cluster: Cluster, tmp_path: Path) -> Path:
    path = tmp_path / "paced.yaml"
    path.write_text(PACED)
    return path


# submit ------------------------------------------------------------------------------
def test_submit_wait_json_prints_the_object_segue_run_json_prints(
    cluster: Cluster, tmp_path: Path
) -> None:
    embedded_env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    embedded = subprocess.run(
        [*SEGUE, "run", str(QUICKSTART), "-i", "n=4", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**embedded_env, "SEGUE_HOME": str(tmp_path / "home")},
        timeout=45,
    )
    submitted = segue(cluster, "submit", str(QUICKSTART), "-i", "n=4", "--wait", "--json")

    ran, waited = json.loads(ok(embedded)), json.loads(ok(submitted))
    assert waited["job"] != ran["job"]
    assert {**waited, "job": None} == {**ran, "job": None}
    assert waited["outputs"] == {"total": 24, "message": "n squared plus 2n is 24"}


def test_an_invalid_workflow_is_refused_with_the_messages_of_segue_validate(
    cluster: Cluster, tmp_path: Path
) -> None:
    flow = tmp_path / "invalid.yaml"
    flow.write_text(INVALID)

    refused = segue(cluster, "submit", str(flow))
    validated = segue(cluster, "validate", str(flow))

    assert refused.returncode == validated.returncode == 2
    assert refused.stdout == validated.stdout
    assert "Maht" in refused.stdout and "Traceback" not in refused.stderr


def test_a_submitted_job_is_waited_for_listed_and_shown_with_its_node_health(
    cluster: Cluster,
) -> None:
    job = submit(cluster, QUICKSTART)

    result = json.loads(ok(segue(cluster, "jobs", "wait", job, "--json")))
    jobs = json.loads(ok(segue(cluster, "jobs", "list", "--json")))
    shown = json.loads(ok(segue(cluster, "jobs", "show", job, "--json")))
    table = ok(segue(cluster, "jobs", "show", job))
    health = json.loads(ok(segue(cluster, "nodes", "health", job, "--json")))

    assert result["job"] == job
    assert (result["status"], result["outputs"]["total"]) == ("completed", 15)
    mine = next(j for j in jobs if j["job"] == job)
    assert set(mine) == {
        "job",
        "workflow",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "driver",
        "orphaned",
    }
    assert (mine["workflow"], mine["status"], mine["error"]) == ("quickstart", "completed", None)
    assert (mine["driver"], mine["orphaned"]) == (None, False)  # ended: nothing drives it
    assert shown["job"] == job and "id" not in shown
    assert shown["outputs"] == result["outputs"]
    assert [loop["name"] for loop in shown["loops"]] == ["main"]
    assert shown["runs"] == {"succeeded": 8}
    assert table.startswith(f"job {job} (quickstart): completed")
    assert set(health) == {"n", "two", "square", "doubled", "total", "message", "result", "text"}
    assert all(
        (h["health"], h["succeeded"], h["failed"]) == ("healthy", 1, 0) for h in health.values()
    )


def test_jobs_show_prints_a_cluster_jobs_failed_run_with_the_workers_traceback(
    cluster: Cluster, tmp_path: Path
) -> None:
    flow = tmp_path / "failing.yaml"
    flow.write_text(FAILING)
    job = submit(cluster, flow)

    result = json.loads(segue(cluster, "jobs", "wait", job, "--json").stdout)
    shown = json.loads(ok(segue(cluster, "jobs", "show", job, "--json")))
    text = ok(segue(cluster, "jobs", "show", job))

    assert result["status"] == "failed"
    [failed] = shown["failed_runs"]
    assert (failed["run_id"], failed["status"], failed["attempt"]) == (
        f"{job}:main:0:bad",
        "failed",
        1,
    )
    error = (
        "FatalNodeError: node 'bad' (Math pow): input 'a' is 0 and 'b' is negative; "
        "cannot divide by zero"
    )
    assert failed["error"] == error
    trace = failed["traceback"]  # from the worker that ran it, through the node's own code
    assert ", in run\n" in trace and ", in _check_power\n" in trace
    assert trace.rstrip().endswith(f"nodes.errors.{error}")
    assert f"failed bad, attempt 1 ({job}:main:0:bad)" in text
    assert f"  {error}" in text
    assert "  Traceback (most recent call last):" in text and ", in _check_power" in text


# loops -------------------------------------------------------------------------------
def test_a_loop_is_paused_resumed_and_stopped_through_the_cli(
    cluster: Cluster, client: Client, paced: Path
) -> None:
    job = client.submit(paced).id
    eventually(lambda: loop_info(client, job, "ticks").iterations >= 1)

    assert "ticks" in ok(segue(cluster, "loops", "pause", job, "ticks"))
    eventually(lambda: loop_info(client, job, "ticks").status == "paused")
    paused_at = loop_info(client, job, "ticks").iterations
    time.sleep(0.5)  # ten intervals: a running loop would have moved on
    assert listed(cluster, job)["ticks"] == {
        "name": "ticks",
        "status": "paused",
        "iterations": paused_at,
        "failed_iterations": 0,
    }
    assert "already paused" in ok(segue(cluster, "loops", "pause", job, "ticks"))

    ok(segue(cluster, "loops", "resume", job, "ticks"))
    eventually(lambda: loop_info(client, job, "ticks").iterations > paused_at)
    assert listed(cluster, job)["ticks"]["status"] == "running"

    ok(segue(cluster, "loops", "stop", job, "ticks"))
    result = client.wait(job, timeout=30)
    assert (result.status, result.loops["ticks"].status) == ("completed", "stopped")
    assert paused_at < result.loops["ticks"].iterations < 200


def test_an_unknown_loop_or_job_exits_2_naming_it_without_a_traceback(
    cluster: Cluster, client: Client
) -> None:
    job = client.submit(TWO_LOOPS).id

    no_loop = segue(cluster, "loops", "pause", job, "nosuch")
    no_job = segue(cluster, "loops", "resume", "nosuchjob", "readings")
    not_shown = segue(cluster, "jobs", "show", "nosuchjob", "--json")

    assert no_loop.returncode == 2
    assert all(name in no_loop.stderr for name in ("'nosuch'", "readings", "consume"))
    for done in (no_job, not_shown):
        assert done.returncode == 2 and "'nosuchjob'" in done.stderr
    for done in (no_loop, no_job, not_shown):
        assert "Traceback" not in done.stderr and done.stdout == ""


# queues and events ---------------------------------------------------------------------
QUEUED = """\
name: queued
nodes:
  - {id: ticks, type: Range, config: {stop: 60, interval_s: 0.05}}
  - {id: push, type: QueueWriter, config: {queue: scaled}}
  - {id: pull, type: QueueReader, config: {queue: scaled}}
  - {id: out, type: Output, config: {name: got}}
edges:
  - {from: ticks.value, to: push.value}
  - {from: pull.item, to: out.value}
"""


def test_queues_lists_a_running_jobs_queue_which_is_deleted_when_the_job_ends(
    cluster: Cluster, client: Client
) -> None:
    job = client.submit(Workflow.loads(QUEUED))
    deadline = time.monotonic() + 20
    while True:  # the reader's group exists once its loop has started
        depths = json.loads(ok(segue(cluster, "queues", "--json")))
        if "pull" in depths["queues"].get(f"{job.id}:scaled", {}):
            break
        assert time.monotonic() < deadline, depths
    assert f"segue.results.{job.id}" in depths["results"]  # read by the coordinator

    assert job.wait(timeout=30).status == "completed"
    depths = json.loads(ok(segue(cluster, "queues", "--json")))
    assert f"{job.id}:scaled" not in depths["queues"]


def test_events_follow_prints_json_lines_ending_with_the_job_event(
    cluster: Cluster, client: Client
) -> None:
    job = client.submit(QUICKSTART).id

    lines = ok(segue(cluster, "events", job, "--follow", "--json")).splitlines()

    events = [json.loads(line) for line in lines]
    assert {e["job"] for e in events} == {job}
    assert (events[-1]["kind"], events[-1]["status"]) == ("job", "completed")
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


# cancel and Ctrl-C ---------------------------------------------------------------------
def test_jobs_cancel_cancels_a_running_job_and_leaves_an_ended_one_alone(
    cluster: Cluster, client: Client, paced: Path
) -> None:
    job = client.submit(paced).id

    cancelled = ok(segue(cluster, "jobs", "cancel", job))
    waited = segue(cluster, "jobs", "wait", job, "--json", "--timeout", "30")
    again = segue(cluster, "jobs", "cancel", job)

    assert "cancel requested" in cancelled
    assert waited.returncode == 1
    assert json.loads(waited.stdout)["status"] == "cancelled"
    assert "already ended" in ok(again)


def test_ctrl_c_while_waiting_leaves_the_job_running_and_exits_130(
    cluster: Cluster, client: Client, paced: Path
) -> None:
    child = subprocess.Popen(
        [*SEGUE, "submit", str(paced), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cluster.root,
        env=cluster.env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    store = open_store(cluster.database_url, cluster.root / "home")
    try:
        eventually(lambda: any(j.workflow == "paced" for j in store.list_jobs("running", 10)))
        time.sleep(0.3)  # the child is waiting now
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
        running = [j.id for j in store.list_jobs("running", 10) if j.workflow == "paced"]
    finally:
        store.close()

    assert child.returncode == 130, stderr
    job = next(j for j in running if j in stderr)
    assert f"segue jobs cancel {job}" in stderr and "Traceback" not in stderr
    assert loop_info(client, job, "ticks").status == "running"
    client.cancel(job)
    assert client.wait(job, timeout=30).status == "cancelled"
