"""Issue 13, part 3: runs that end their thread or process badly fail alone.

A node that calls ``sys.exit()`` or raises a ``BaseException`` fails its run
with an error that says so; a process-pool child that segfaults or is killed
fails the run it held (its retry policy applies) and the pool recovers;
process-pool children send node events and open the artifacts URL the engine
uses; a script without a ``__main__`` guard is told to add one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.artifacts import MemoryArtifactStore
from orchestrator import Client, Workflow, WorkflowBuilder
from orchestrator.messages import RunRequest
from orchestrator.runner import NodeRunner
from orchestrator.settings import Settings
from tests.support import robust_nodes

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """An embedded client over the robust node types, with a small process pool."""
    settings = Settings(home=tmp_path / "home", processes=2, threads=4)
    with Client.embedded(settings=settings, registry=robust_nodes.registry()) as embedded:
        yield embedded


_misbehaving = robust_nodes.misbehaving


def _odd_runs(client: Client, job: str) -> dict[int, Any]:
    runs = [r for r in client.runs(job, "ticks") if r.node == "odd"]
    return {r.iteration: r for r in runs}


# sys.exit() and BaseException ------------------------------------------------------
@pytest.mark.parametrize(
    ("pool", "how", "says"),
    [
        ("thread", "exit", "SystemExit: node 'odd' (Misbehave) called sys.exit(3)"),
        ("thread", "base", "BaseException: node 'odd' (Misbehave) raised BaseException: gone"),
        ("thread", "keyboard", "KeyboardInterrupt: node 'odd' (Misbehave) raised"),
        ("asyncio", "exit", "SystemExit: node 'odd' (Misbehave) called sys.exit(3)"),
        ("asyncio", "base", "BaseException: node 'odd' (Misbehave) raised BaseException"),
        ("process", "exit", "SystemExit: node 'odd' (Misbehave) called sys.exit(3)"),
        ("process", "base", "BaseException: node 'odd' (Misbehave) raised BaseException"),
        ("process", "keyboard", "KeyboardInterrupt: node 'odd' (Misbehave) raised"),
    ],
)
def test_a_node_that_exits_or_raises_a_base_exception_fails_only_its_own_run(
    client: Client, pool: str, how: str, says: str
) -> None:
    job = client.submit(_misbehaving(pool, how))
    result = job.wait(timeout=60)

    runs = _odd_runs(client, result.job)
    assert runs[2].status == "failed"
    assert runs[2].error is not None and says in runs[2].error
    assert {i: r.status for i, r in runs.items() if i != 2} == dict.fromkeys(
        (0, 1, 3, 4, 5), "succeeded"
    )
    assert sorted(result.outputs["values"]) == [0, 1, 3, 4, 5]


# a child that dies -----------------------------------------------------------------
@pytest.mark.parametrize("how", ["segv", "null", "kill"])
def test_a_child_that_dies_fails_its_run_and_the_pool_runs_the_others(
    client: Client, how: str
) -> None:
    result = client.submit(_misbehaving("process", how, bad=1)).wait(timeout=60)

    runs = _odd_runs(client, result.job)
    assert runs[1].status == "failed"
    assert runs[1].error is not None and "ChildProcessDied" in runs[1].error
    signal_name = "SIGKILL" if how == "kill" else "SIGSEGV"
    assert f"died of {signal_name}" in runs[1].error
    assert sorted(result.outputs["values"]) == [0, 2, 3, 4, 5]
    # The engine stays usable, and so does its process pool.
    again = client.submit(_misbehaving("process", "exit", count=3, bad=-1)).wait(timeout=60)
    assert again.status == "completed", again.error
    assert sorted(again.outputs["values"]) == [0, 1, 2]


def test_a_run_whose_child_died_is_retried_by_its_retry_policy(
    client: Client, tmp_path: Path
) -> None:
    workflow = _misbehaving(
        "process",
        "segv",
        count=4,
        bad=1,
        config={"once": str(tmp_path / "crashed-once")},
        retry={"attempts": 2},
    )
    job = client.submit(workflow)
    result = job.wait(timeout=60)

    assert result.status == "completed", result.error
    assert sorted(result.outputs["values"]) == [0, 1, 2, 3]
    assert _odd_runs(client, result.job)[1].attempt == 2


# what the children see and send ----------------------------------------------------
def _chatty(name: str) -> Workflow:
    b = WorkflowBuilder(name)
    ticks = b.node("ticks", "Range", config={"stop": 2})
    chatty = b.node("chatty", "Chatty")
    out = b.node("out", "Output", config={"name": "uris"})
    b.edge(ticks["value"], chatty["value"]).edge(chatty["uri"], out["value"])
    b.loop("ticks", pool="process")
    return b.build()


def test_process_children_send_progress_preview_and_log_events(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    job = client.submit(_chatty("chatty-events"))
    events = list(job.events(timeout=60))

    progress = [e for e in events if e.kind == "progress"]
    previews = [e for e in events if e.kind == "preview"]
    assert {e.data.get("message") for e in progress} == {"half of 0", "half of 1"}
    assert sorted(e.data["value"] for e in previews) == [0, 1]
    logged = [r for r in caplog.records if r.name == "segue.node"]
    assert sorted(r.getMessage() for r in logged) == ["chatty says 0", "chatty says 1"]
    assert {r.process for r in logged} - {os.getpid()}  # logged in the children


def test_process_children_open_the_artifacts_url_the_engine_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    url = f"file://{tmp_path / 'artifacts'}"
    settings = Settings(home=tmp_path / "home", processes=1, artifacts_url=url)
    with Client.embedded(settings=settings, registry=robust_nodes.registry()) as client:
        result = client.submit(_chatty("chatty-artifacts")).wait(timeout=60)

    assert result.status == "completed", result.error
    stored = sorted(p.read_bytes() for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    assert stored == [b"value 0", b"value 1"]
    assert list(cwd.iterdir()) == []  # no folder named after the URL


# a script without the __main__ guard -----------------------------------------------
UNGUARDED = """
from orchestrator import Client, WorkflowBuilder

b = WorkflowBuilder("unguarded")
ticks = b.node("ticks", "Range", config={{"stop": 2}})
out = b.node("out", "Output", config={{"name": "values"}})
b.edge(ticks["value"], out["value"])
client = Client.embedded({home!r})
b.loop("ticks", pool="process")
print("process:", client.submit(b.build()).wait(timeout=60).error, flush=True)
b.loop("ticks", pool="thread")
print("thread:", client.submit(b.build()).wait(timeout=60).status, flush=True)
client.close()
"""


def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(UNGUARDED.format(home=str(tmp_path / "home"))))

    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )

    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-3000:]
    process = next(line for line in lines if line.startswith("process:"))
    assert "MainGuardMissing" in process
    assert 'if __name__ == "__main__":' in process
    assert "thread: completed" in lines


# the runner, on the main thread ----------------------------------------------------
class _HostShutdown(SystemExit):
    """What Celery's WorkerShutdown is: a SystemExit subclass its signal handler raises."""


def _request(how: str) -> RunRequest:
    return RunRequest(
        run_id="j:main:0:odd",
        job_id="j",
        loop="main",
        iteration=0,
        node_id="odd",
        type_name="Misbehave",
        config={"how": how, "bad": 0},
        inputs={"value": 0},
    )


def test_on_the_main_thread_sys_exit_fails_the_run_but_a_host_stop_still_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = NodeRunner(robust_nodes.registry(), MemoryArtifactStore())
    result = runner.run(_request("exit"))
    assert result.status == "failed"
    assert result.error is not None and result.error.type == "SystemExit"

    def host_stops(code: object) -> None:
        raise _HostShutdown(code)

    monkeypatch.setattr(robust_nodes.sys, "exit", host_stops)
    with pytest.raises(_HostShutdown):
        runner.run(_request("exit"))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C lands on the main thread
        runner.run(_request("keyboard"))
