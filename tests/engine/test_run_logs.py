"""DESIGN 3.16 in the embedded engine: each run's log records - its context
logger, its node's own ``logging`` and its stdout/stderr - are kept with the
run in every pool (thread, asyncio, process children), bounded, and read back
with ``Client.logs`` beside the tracebacks of failed runs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.library import builtin_registry
from orchestrator import (
    Client,
    FatalNodeError,
    Node,
    NodeRegistry,
    NotInJobError,
    Ports,
    RunContext,
    UnknownJobError,
    WorkflowBuilder,
)
from orchestrator.runner.capture import MAX_MESSAGE, MAX_RECORDS, RunLog
from orchestrator.settings import Settings
from tests.support.log_nodes import Talker

pytestmark = pytest.mark.timeout(90)


class AsyncTalker(Node):
    """:class:`Talker`, from a coroutine."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    async def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.info("context says %s", inputs.value)
        logging.getLogger("user.library").warning("library warns %s", inputs.value)
        print(f"printed {inputs.value}")
        print(f"to stderr {inputs.value}", file=sys.stderr)
        return self.Outputs(value=inputs.value)


class Flood(Node):
    """Logs more than a run keeps, one message longer than a record keeps."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.info("x" * (MAX_MESSAGE + 100))
        for i in range(MAX_RECORDS + 50):
            ctx.logger.info("line %d", i)
        return self.Outputs(value=inputs.value)


class Doomed(Node):
    """Logs, then fails for good."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.error("about to fail")
        raise FatalNodeError("doomed on purpose")


def _registry() -> NodeRegistry:
    registry = builtin_registry().copy()
    for node_type in (Talker, AsyncTalker, Flood, Doomed):
        registry.register(node_type)
    return registry


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(home=tmp_path / "home", processes=1, threads=4)
    with Client.embedded(settings=settings, registry=_registry()) as embedded:
        yield embedded


def _looped(name: str, node_type: str, pool: str, stop: int = 2) -> Any:
    b = WorkflowBuilder(name)
    ticks = b.node("ticks", "Range", config={"stop": stop})
    talk = b.node("talk", node_type)
    b.edge(ticks["value"], talk["value"])
    b.loop("ticks", pool=pool)
    return b.build()


@pytest.mark.parametrize(
    ("pool", "node_type"),
    [
        ("thread", "Talker"),
        ("thread", "AsyncTalker"),
        ("asyncio", "AsyncTalker"),
        ("asyncio", "Talker"),
        ("process", "Talker"),
    ],
)
def test_each_pool_keeps_what_a_run_logged_and_printed(
    client: Client, pool: str, node_type: str
) -> None:
    result = client.submit(_looped(f"logs-{pool}", node_type, pool)).wait(timeout=60)
    assert result.status == "completed", result.error

    lines = client.logs(result.job, node="talk")
    for i in range(2):
        mine = {(line.logger, line.level, line.message) for line in lines if line.iteration == i}
        assert mine == {
            ("segue.node", "INFO", f"context says {i}"),
            ("user.library", "WARNING", f"library warns {i}"),
            ("stdout", "INFO", f"printed {i}"),
            ("stderr", "WARNING", f"to stderr {i}"),
        }, (pool, node_type)
    assert all(line.loop == "ticks" and line.attempt == 1 for line in lines)
    ids = [line.id for line in lines]
    assert len(set(ids)) == len(ids) and all(ids)
    # Runs that logged nothing (the Range producer) have no log.
    assert client.logs(result.job, node="ticks") == []


def test_a_run_keeps_its_newest_records_and_says_how_many_it_dropped(client: Client) -> None:
    result = client.submit(_looped("flood", "Flood", "thread", stop=1)).wait(timeout=60)
    assert result.status == "completed", result.error

    lines = client.logs(result.job, node="talk")
    assert len(lines) == MAX_RECORDS + 1
    note, first, last = lines[0], lines[1], lines[-1]
    assert note.logger == "segue" and note.level == "WARNING"
    assert note.message.startswith("51 earlier log records of this attempt were dropped")
    assert first.message == "line 50"  # the long first record and lines 0-49 went
    assert last.message == f"line {MAX_RECORDS + 49}"


def test_a_long_message_is_cut_and_says_so() -> None:
    log = RunLog()
    log.add(0.0, logging.INFO, "x", "y" * (MAX_MESSAGE + 10))
    data = log.to_json()
    assert data is not None
    message = data["records"][0][3]
    assert message.startswith("y" * MAX_MESSAGE) and message.endswith("[10 characters cut]")
    assert len(message) < MAX_MESSAGE + 40


def test_a_print_without_its_line_end_is_kept_when_the_run_ends() -> None:
    log = RunLog()
    log.write("stdout", "one\ntw")
    log.write("stdout", "o\nthree")
    data = log.to_json()
    assert data is not None
    assert [r[2:] for r in data["records"]] == [
        ["stdout", "one"],
        ["stdout", "two"],
        ["stdout", "three"],
    ]
    assert RunLog().to_json() is None


def test_failed_runs_show_their_log_and_their_traceback_and_levels_filter(
    client: Client,
) -> None:
    result = client.submit(_looped("doomed", "Doomed", "thread", stop=1)).wait(timeout=60)
    assert result.status == "failed"

    lines = client.logs(result.job, level="error")
    assert [(line.logger, line.level) for line in lines] == [
        ("segue.node", "ERROR"),
        ("traceback", "ERROR"),
    ]
    assert "FatalNodeError: doomed on purpose" in lines[1].message
    assert "Traceback" in lines[1].message
    assert client.logs(result.job, level="CRITICAL") == []
    assert client.logs(result.job, loop="main") == []


def test_logs_name_what_the_job_does_not_have(client: Client) -> None:
    result = client.submit(_looped("names", "Talker", "thread", stop=1)).wait(timeout=60)
    with pytest.raises(UnknownJobError, match="nope"):
        client.logs("nope")
    with pytest.raises(NotInJobError, match="no loop 'nope'; its loops: main, ticks"):
        client.logs(result.job, loop="nope")
    with pytest.raises(NotInJobError, match="no node 'nope'; its nodes: talk, ticks"):
        client.logs(result.job, node="nope")
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        client.logs(result.job, level="LOUD")
