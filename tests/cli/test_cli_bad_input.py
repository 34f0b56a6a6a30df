"""Bad input never crashes the command line: the files and inputs that made `segue
validate`, `segue submit` and `segue run` exit 1 with "internal error … This is a bug
in Segue" exit 2 with a located message naming the limit, and `--json` stays JSON.

Each kind of file runs through the command in this process (where any exception
would surface as one), and once as a user's shell runs it: the real ``segue`` in a
child process, with its "internal error" guard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(120)

SEGUE = [sys.executable, "-m", "orchestrator.cli"]
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
GROUP = (
    '{"name": "g", "nodes": [{"id": "i", "type": "Input", "config": {"name": "xs"}}, '
    '{"id": "g", "type": "Group", "config": {"workflow": '
)
GROUP_END = '}}], "edges": [{"from": "i.value", "to": "g.items"}]}'
LEAF = '{"name": "leaf", "nodes": [{"id": "c", "type": "Constant", "config": {"value": 1}}]}'


def constant(value: str) -> str:
    node = f'{{"id": "c", "type": "Constant", "config": {{"value": {value}}}}}'
    return f'{{"name": "x", "nodes": [{node}]}}'


CRASHERS: dict[str, tuple[str, str]] = {
    # name: (file name, text), each once an "internal error"
    "json-5000-deep": ("deep.json", "[" * 5000 + "]" * 5000),
    "groups-400-deep": ("groups.json", GROUP * 400 + LEAF + GROUP_END * 400),
    "json-5000-digits": ("digits.json", constant("9" * 5000)),
    "yaml-5000-digits": (
        "digits.yaml",
        "name: x\nnodes:\n  - id: c\n    type: Constant\n    config:\n      value: "
        + "9" * 5000
        + "\n",
    ),
}
LIMIT_NAMED = {
    "json-5000-deep": "deeper than the limit of 100 levels",
    "groups-400-deep": "deeper than the limit of 100 levels",
    "json-5000-digits": "an integer of 5,000 digits, over the limit of 4,300 digits",
    "yaml-5000-digits": "an integer of 5,000 digits, over the limit of 4,300 digits",
}
OFFLINE = ["--broker-url", "memory://cli-bad-input"]


def segue(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300", "SEGUE_HOME": str(cwd / "home")}
    env.pop("SEGUE_DEBUG", None)
    return subprocess.run(
        [*SEGUE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=90
    )


def invoke(*args: str) -> tuple[int, str]:
    """The command in this process: its exit code and output, failing on any exception."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "internal error" not in result.output
    return result.exit_code, result.stdout


def no_crash(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    text = done.stdout + done.stderr
    assert "internal error" not in text and "Traceback" not in text


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        file_name, text = CRASHERS[name]
        path = tmp_path / file_name
        path.write_text(text)
        return path

    return make


@pytest.mark.parametrize("name", CRASHERS)
def test_validate_refuses_a_crashing_file_with_exit_2_naming_the_limit(
    name: str, write: Callable[[str], Path]
) -> None:
    path = write(name)
    code, output = invoke("validate", str(path))
    assert code == 2, output
    assert f"{path}:" in output and LIMIT_NAMED[name] in output


@pytest.mark.parametrize("name", CRASHERS)
def test_validate_json_reports_the_limit_as_one_located_error(
    name: str, write: Callable[[str], Path]
) -> None:
    code, output = invoke("validate", str(write(name)), "--json")
    assert code == 2, output
    report = json.loads(output)
    assert report["valid"] is False
    (error,) = report["errors"]
    assert LIMIT_NAMED[name] in error["message"] and error["line"] is not None


@pytest.mark.parametrize("name", CRASHERS)
def test_submit_refuses_a_crashing_file_before_reaching_the_cluster(
    name: str, write: Callable[[str], Path]
) -> None:
    code, output = invoke("submit", str(write(name)), "--json", *OFFLINE)
    assert code == 2, output
    (error,) = json.loads(output)["errors"]
    assert LIMIT_NAMED[name] in error["message"]


def test_the_real_command_refuses_each_crashing_file_with_exit_2(
    tmp_path: Path, write: Callable[[str], Path]
) -> None:
    for name in CRASHERS:
        done = segue(tmp_path, "validate", str(write(name)))
        no_crash(done)
        assert LIMIT_NAMED[name] in done.stdout, (name, done.stdout)
    done = segue(tmp_path, "submit", str(write("yaml-5000-digits")), *OFFLINE)
    no_crash(done)
    assert LIMIT_NAMED["yaml-5000-digits"] in done.stdout


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("NaN", "nan"), ("1e999", "inf"), ("-Infinity", "-inf")],
)
def test_run_refuses_a_number_json_cannot_hold_with_exit_2_and_one_json_object(
    raw: str, shown: str, tmp_path: Path
) -> None:
    done = segue(tmp_path, "run", str(QUICKSTART), "-i", f"n={raw}", "--json")
    no_crash(done)
    result = json.loads(done.stdout)
    assert result["status"] == "invalid" and result["job"] is None
    assert result["error"].startswith(f"input 'n': the number {shown} is not finite")


def test_run_refuses_an_input_integer_of_5000_digits_naming_the_limit(tmp_path: Path) -> None:
    done = segue(tmp_path, "run", str(QUICKSTART), "-i", "n=" + "9" * 5000)
    no_crash(done)
    expected = "input 'n': an integer of 5,000 digits, over the limit of 4,300 digits"
    assert expected in done.stdout + done.stderr


def test_run_refuses_an_input_nested_past_the_limit(tmp_path: Path) -> None:
    done = segue(tmp_path, "run", str(QUICKSTART), "-i", "n=" + "[" * 5000 + "]" * 5000)
    no_crash(done)
    expected = "input 'n' nests lists and mappings deeper than the limit of 100"
    assert expected in done.stdout + done.stderr


@pytest.mark.services
@pytest.mark.parametrize("raw", ["NaN", "1e999"])
def test_submit_refuses_a_number_json_cannot_hold_before_the_store_sees_it(
    raw: str, cluster: Cluster, tmp_path: Path
) -> None:
    done = segue(
        tmp_path,
        "submit",
        str(QUICKSTART),
        "-i",
        f"n={raw}",
        "--json",
        "--broker-url",
        cluster.broker_url,
        "--database-url",
        cluster.database_url,
    )
    no_crash(done)
    (error,) = json.loads(done.stdout)["errors"]
    assert error["message"].startswith("input 'n': the number")
    assert error["node"] == "n"


@pytest.mark.services
def test_submit_refuses_a_string_for_a_number_naming_node_and_port(
    cluster: Cluster, tmp_path: Path
) -> None:
    done = segue(
        tmp_path,
        "submit",
        str(QUICKSTART),
        "-i",
        "n=abc",
        "--broker-url",
        cluster.broker_url,
        "--database-url",
        cluster.database_url,
    )
    no_crash(done)
    assert "which node 'square' cannot take as its input 'a'" in done.stdout
