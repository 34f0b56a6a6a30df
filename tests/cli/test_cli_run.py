"""`segue run` as a user's shell runs it (DESIGN section 6): the real command line in
a child process, its exit codes, its one JSON object, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.states import RunStatus
from orchestrator.store import DEFAULT_SQLITE_NAME, open_store

pytestmark = pytest.mark.timeout(60)

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
SEGUE = [sys.executable, "-m", "orchestrator.cli"]
RESULT_KEYS = {"job", "status", "outputs", "error", "loops"}
FINAL_RUN_STATUSES = {s.value for s in RunStatus if s.terminal}

LOOP_FAILS = """\
name: loop-fails
nodes:
  - id: ticks
    type: Range
    config: {stop: 5}
  - id: flaky
    type: Flaky
    config: {fail_on: [2]}
  - id: out
    type: Output
    config: {name: values}
edges:
  - {from: ticks.value, to: flaky.value}
  - {from: flaky.value, to: out.value}
loops:
  ticks: {on_error: %s}
"""

STRING_TO_MATH = """\
name: string-to-math
nodes:
  - {id: n, type: Constant, config: {value: abc}}
  - {id: two, type: Constant, config: {value: 2}}
  - {id: square, type: Math, config: {op: pow}}
edges:
  - {from: n.value, to: square.a}
  - {from: two.value, to: square.b}
"""

INVALID = """\
name: invalid
nodes:
  - id: ticks
    type: Range
    config: {stop: 5, step: 0}
  - id: sq
    type: Maht
edges:
  - {from: ticks.value, to: sq.a}
"""

PACED = """\
name: paced
nodes:
  - id: ticks
    type: Range
    config: {stop: 1000, interval_s: 0.05}
  - id: out
    type: Output
    config: {name: values}
edges:
  - {from: ticks.value, to: out.value}
"""

PACED_IN_PROCESSES = """\
name: paced-in-processes
nodes:
  - id: ticks
    type: Range
    config: {stop: 1000, interval_s: 0.05}
  - id: nap
    type: Sleep
    config: {seconds: 0.01}
  - id: out
    type: Output
    config: {name: values}
edges:
  - {from: ticks.value, to: nap.value}
  - {from: nap.value, to: out.value}
loops:
  ticks: {pool: process}
"""

LONG_NODE = """\
name: long-node
nodes:
  - id: ticks
    type: Range
    config: {stop: 3}
  - id: nap
    type: Sleep
    config: {seconds: 30}
edges:
  - {from: ticks.value, to: nap.value}
"""

ECHO = """\
name: echo
nodes:
"""
ECHO_NAMES = ("number", "word", "listed", "quoted", "empty", "equals")
ECHO += "".join(
    f"  - {{id: in_{n}, type: Input, config: {{name: {n}}}}}\n"
    f"  - {{id: out_{n}, type: Output, config: {{name: {n}}}}}\n"
    for n in ECHO_NAMES
)
ECHO += "edges:\n" + "".join(f"  - {{from: in_{n}.value, to: out_{n}.value}}\n" for n in ECHO_NAMES)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    return {**env, "SEGUE_HOME": str(home), "COLUMNS": "200"}


def _default_sigint() -> None:
    # A shell that starts a child in the background makes it ignore SIGINT, and a
    # Python started that way keeps ignoring it: give the child a real Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def segue_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``segue run ARGS`` in ``tmp_path`` with its home in ``tmp_path/home``."""
    return subprocess.run(
        [*SEGUE, "run", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path / "home"),
        timeout=45,
    )


def one_object(stdout: str) -> dict[str, Any]:
    """The single JSON object stdout holds; fails on anything more or less."""
    value = json.loads(stdout)  # raises on a second document or stray text
    assert isinstance(value, dict), stdout
    return value


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# success ---------------------------------------------------------------------------
def test_quickstart_with_json_prints_exactly_the_design_object_and_exits_0(
    tmp_path: Path,
) -> None:
    done = segue_run(tmp_path, str(QUICKSTART), "--json")

    assert done.returncode == 0, done.stderr
    result = one_object(done.stdout)
    assert set(result) == RESULT_KEYS
    assert isinstance(result["job"], str) and result["job"]
    assert result["status"] == "completed"
    assert result["outputs"] == {"total": 15, "message": "n squared plus 2n is 15"}
    assert result["error"] is None
    assert result["loops"] == {
        "main": {"status": "completed", "iterations": 1, "failed_iterations": 0}
    }
    assert (tmp_path / "home" / DEFAULT_SQLITE_NAME).is_file()


def test_an_input_given_with_i_is_parsed_as_json(tmp_path: Path) -> None:
    done = segue_run(tmp_path, str(QUICKSTART), "-i", "n=4", "--json")

    assert done.returncode == 0, done.stderr
    assert one_object(done.stdout)["outputs"]["total"] == 24


def test_input_values_are_json_when_they_parse_and_strings_otherwise(tmp_path: Path) -> None:
    flow = _write(tmp_path, "echo.yaml", ECHO)
    pairs = {
        "number": "4.5",
        "word": "hello",
        "listed": '[1, "two", null]',
        "quoted": '"42"',
        "empty": "",
        "equals": "a=b",
    }
    args = [a for name, raw in pairs.items() for a in ("-i", f"{name}={raw}")]

    done = segue_run(tmp_path, str(flow), *args, "--json")

    assert done.returncode == 0, done.stderr
    assert one_object(done.stdout)["outputs"] == {
        "number": 4.5,
        "word": "hello",
        "listed": [1, "two", None],
        "quoted": "42",
        "empty": "",
        "equals": "a=b",
    }


def test_without_json_on_pipes_it_prints_the_status_and_output_lines(tmp_path: Path) -> None:
    done = segue_run(tmp_path, str(QUICKSTART), "-i", "n=4")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    assert lines[0].startswith("job ") and lines[0].endswith(": completed")
    assert lines[1:] == ["  total = 24", '  message = "n squared plus 2n is 24"']


# failures --------------------------------------------------------------------------
def test_a_string_reaching_math_fails_the_job_with_exit_1_naming_node_and_port(
    tmp_path: Path,
) -> None:
    # A job input is checked against the ports it feeds when the job is submitted
    # (below); a string still reaches Math at run time from a node's output.
    flow = _write(tmp_path, "string.yaml", STRING_TO_MATH)
    done = segue_run(tmp_path, str(flow), "--json")

    assert done.returncode == 1, done.stderr
    result = one_object(done.stdout)
    assert set(result) == RESULT_KEYS
    assert result["status"] == "failed"
    assert result["loops"]["main"]["status"] == "failed"
    error = result["error"]
    assert error.startswith("node 'square' failed in main stage: ")
    assert "input 'a' of 'square'" in error and "(got 'abc')" in error
    assert "Traceback" not in done.stdout + done.stderr


def test_a_string_input_for_a_number_is_refused_at_submit_with_exit_2_naming_node_and_port(
    tmp_path: Path,
) -> None:
    done = segue_run(tmp_path, str(QUICKSTART), "-i", "n=abc", "--json")

    assert done.returncode == 2, done.stderr
    result = one_object(done.stdout)
    assert set(result) == RESULT_KEYS
    assert result["status"] == "invalid" and result["job"] is None
    error = result["error"]
    assert "input 'n' is \"abc\", which node 'square' cannot take as its input 'a'" in error
    assert "node 'doubled'" in error
    assert "Traceback" not in done.stdout + done.stderr


def test_a_loop_failing_under_on_error_stop_exits_1_and_shows_the_loop_failed(
    tmp_path: Path,
) -> None:
    flow = _write(tmp_path, "fails.yaml", LOOP_FAILS % "stop")

    done = segue_run(tmp_path, str(flow), "--json")

    assert done.returncode == 1, done.stderr
    result = one_object(done.stdout)
    assert result["status"] == "failed"
    assert result["outputs"] == {"values": [0, 1]}
    assert result["loops"] == {
        "main": {"status": "completed", "iterations": 1, "failed_iterations": 0},
        "ticks": {"status": "failed", "iterations": 3, "failed_iterations": 1},
    }
    assert result["error"].startswith("node 'flaky' failed in loop 'ticks' iteration 2: ")


def test_a_loop_failing_under_on_error_continue_completes_with_exit_0(tmp_path: Path) -> None:
    flow = _write(tmp_path, "continues.yaml", LOOP_FAILS % "continue")

    done = segue_run(tmp_path, str(flow), "--json")

    assert done.returncode == 0, done.stderr
    result = one_object(done.stdout)
    assert (result["status"], result["error"]) == ("completed", None)
    assert result["outputs"] == {"values": [0, 1, 3, 4]}
    assert result["loops"]["ticks"] == {
        "status": "completed",
        "iterations": 5,
        "failed_iterations": 1,
    }


def test_a_failed_job_without_json_prints_the_loop_and_the_error(tmp_path: Path) -> None:
    flow = _write(tmp_path, "fails.yaml", LOOP_FAILS % "stop")

    done = segue_run(tmp_path, str(flow))

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].endswith(": failed")
    assert "  values = [0, 1]" in lines
    assert "  loop ticks: failed, 3 iterations, 1 failed" in lines
    assert lines[-1].startswith("  error: node 'flaky' failed in loop 'ticks' iteration 2")


# invalid (exit 2) ------------------------------------------------------------------
def test_an_unknown_input_exits_2_naming_it_and_the_known_inputs(tmp_path: Path) -> None:
    done = segue_run(tmp_path, str(QUICKSTART), "-i", "nn=4", "--json")

    assert done.returncode == 2
    result = one_object(done.stdout)
    assert (result["job"], result["status"]) == (None, "invalid")
    assert result["error"] == "unknown input 'nn'; the workflow's inputs are: n"


def test_a_malformed_input_exits_2_without_a_traceback(tmp_path: Path) -> None:
    plain = segue_run(tmp_path, str(QUICKSTART), "-i", "n")
    scripted = segue_run(tmp_path, str(QUICKSTART), "-i", "n", "--json")

    assert plain.returncode == 2
    assert "input 'n' is not of the form name=value" in plain.stderr
    assert "Traceback" not in plain.stdout + plain.stderr
    assert scripted.returncode == 2
    assert one_object(scripted.stdout)["error"] == "input 'n' is not of the form name=value"


def test_a_missing_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    done = segue_run(tmp_path, "nowhere.yaml")

    assert done.returncode == 2
    assert "nowhere.yaml: no such workflow file" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "home").exists()  # nothing ran, nothing was created


def test_an_invalid_workflow_exits_2_with_located_messages(tmp_path: Path) -> None:
    flow = _write(tmp_path, "invalid.yaml", INVALID)

    plain = segue_run(tmp_path, str(flow))
    scripted = segue_run(tmp_path, str(flow), "--json")

    assert plain.returncode == 2
    assert "Traceback" not in plain.stdout + plain.stderr
    assert f"{flow}:5: node 'ticks' (Range): bad config step" in plain.stdout
    assert f"{flow}:7: node 'sq': unknown node type 'Maht'; did you mean 'Math'" in plain.stdout
    assert scripted.returncode == 2
    result = one_object(scripted.stdout)
    assert (result["job"], result["status"], result["loops"]) == (None, "invalid", {})
    assert f"{flow}:7: node 'sq': unknown node type 'Maht'" in result["error"]


# Ctrl-C ----------------------------------------------------------------------------
TICKS_RUNNING = (
    "SELECT 1 FROM jobs JOIN loops ON loops.job_id = jobs.id "
    "WHERE jobs.status = 'running' AND loops.name = 'ticks' AND loops.iterations >= 2"
)
# The producer's first item is recorded; the 30 s nap it feeds starts right after.
NAP_STARTED = (
    "SELECT 1 FROM jobs JOIN node_runs ON node_runs.job_id = jobs.id "
    "WHERE jobs.status = 'running' AND node_runs.node_id = 'ticks' "
    "AND node_runs.status = 'succeeded'"
)


def _store_shows(db: Path, query: str) -> bool:
    """Whether ``query`` finds a row in the child's SQLite store (read-only)."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(query).fetchone() is not None
    except sqlite3.Error:
        return False  # not migrated yet


def _interrupt(
    tmp_path: Path, flow: Path, whole_group: bool, ready: str = TICKS_RUNNING
) -> tuple[int, str, str, float]:
    """Start ``segue run FLOW --json``, Ctrl-C it once the store shows ``ready``;
    returns (exit code, stdout, stderr, seconds from Ctrl-C to exit).

    With ``whole_group`` the signal goes to the child's process group, as a
    terminal's Ctrl-C does, so process-pool children receive it too.
    """
    home = tmp_path / "home"
    child = subprocess.Popen(
        [*SEGUE, "run", str(flow), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(home),
        preexec_fn=_default_sigint,
        start_new_session=whole_group,
    )
    try:
        deadline = time.monotonic() + 20
        while not _store_shows(home / DEFAULT_SQLITE_NAME, ready):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the job never showed up running"
            time.sleep(0.05)
        if whole_group:
            os.killpg(child.pid, signal.SIGINT)
        else:
            child.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        stdout, stderr = child.communicate(timeout=15)
        return child.returncode, stdout, stderr, time.monotonic() - interrupted
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def _assert_cancelled_in_store(home: Path, job_id: str, iterations: int) -> None:
    store = open_store(None, home)
    try:
        job = store.get_job(job_id)
        loops = {r.name: r for r in store.list_loops(job_id)}
        runs = store.list_runs(job_id)
        events = store.read_events(job_id)
    finally:
        store.close()
    assert job is not None
    assert job.status == "cancelled" and job.finished_at is not None
    assert {name: r.status for name, r in loops.items()} == {
        "main": "completed",
        "ticks": "cancelled",
    }
    assert loops["ticks"].iterations == iterations
    assert runs and {r.status for r in runs} <= FINAL_RUN_STATUSES
    assert not [r.run_id for r in runs if r.status in ("queued", "running", "retrying")]
    assert [e.status for e in events if e.kind == "job"][-1] == "cancelled"


def test_ctrl_c_cancels_the_job_exits_130_and_leaves_the_store_consistent(
    tmp_path: Path,
) -> None:
    flow = _write(tmp_path, "paced.yaml", PACED)

    code, stdout, stderr, took = _interrupt(tmp_path, flow, whole_group=False)

    assert code == 130, stderr
    assert took < 5
    assert "Traceback" not in stderr
    result = one_object(stdout)
    assert set(result) == RESULT_KEYS
    assert (result["status"], result["error"]) == ("cancelled", "cancelled by request")
    ticks = result["loops"]["ticks"]
    assert ticks["status"] == "cancelled"
    assert 2 <= ticks["iterations"] < 1000
    assert result["outputs"] == {"values": list(range(ticks["iterations"]))}
    _assert_cancelled_in_store(tmp_path / "home", result["job"], ticks["iterations"])


def test_ctrl_c_at_a_terminal_also_reaching_process_pool_children_still_cancels_cleanly(
    tmp_path: Path,
) -> None:
    flow = _write(tmp_path, "paced.yaml", PACED_IN_PROCESSES)

    code, stdout, stderr, took = _interrupt(tmp_path, flow, whole_group=True)

    assert code == 130, stderr
    assert took < 5
    assert "Traceback" not in stderr
    result = one_object(stdout)
    assert result["status"] == "cancelled"
    ticks = result["loops"]["ticks"]
    assert ticks["status"] == "cancelled"
    values = result["outputs"]["values"]
    assert 2 <= len(values) <= ticks["iterations"] < 1000
    assert values == list(range(len(values)))
    _assert_cancelled_in_store(tmp_path / "home", result["job"], ticks["iterations"])


def test_ctrl_c_during_a_long_node_exits_at_once_instead_of_waiting_for_the_node(
    tmp_path: Path,
) -> None:
    flow = _write(tmp_path, "long.yaml", LONG_NODE)

    code, stdout, stderr, took = _interrupt(tmp_path, flow, whole_group=False, ready=NAP_STARTED)

    assert code == 130, stderr
    assert took < 5, f"exit took {took:.1f}s: it waited for the 30 s node"
    result = one_object(stdout)
    assert result["status"] == "cancelled"
    assert result["loops"]["ticks"] == {
        "status": "cancelled",
        "iterations": 0,
        "failed_iterations": 0,
    }
    store = open_store(None, tmp_path / "home")
    try:
        runs = {r.node_id: r.status for r in store.list_runs(result["job"])}
    finally:
        store.close()
    assert runs["nap"] == "cancelled"
