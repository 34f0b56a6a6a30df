"""One run-result shape (orchestrator/results.py): what the runner returns is what
crosses a process pool, the broker and the journal, and what a stored run reads
back as; a failure keeps its type, message, retryability and traceback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nodes import FatalNodeError, MemoryArtifactStore, Node, NodeConfig, Ports, RunContext
from nodes.library import builtin_registry
from orchestrator.messages import RunRequest
from orchestrator.results import RunError, RunResult
from orchestrator.runner import NodeRunner
from orchestrator.store import RunRecord

TRACEBACK = 'Traceback (most recent call last):\n  File "n.py", line 1, in run\nValueError: no\n'


def _explode_in_sync_node(value: int) -> None:
    raise ValueError(f"cannot take {value}")


async def _explode_in_async_node(value: int) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"cannot await {value}")


class Exploding(Node):
    """Fails in a helper of its own, so its traceback has a frame to look for."""

    class Config(NodeConfig):
        fatal: bool = False

    class Inputs(Ports):
        value: int = 0

    class Outputs(Ports):
        value: int

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        if self.config.fatal:
            raise FatalNodeError("never worth a retry")
        _explode_in_sync_node(inputs.value)
        return self.Outputs(value=inputs.value)


class AsyncExploding(Node):
    """An async node failing in an async helper of its own."""

    class Inputs(Ports):
        value: int = 0

    class Outputs(Ports):
        value: int

    async def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        await _explode_in_async_node(inputs.value)
        return self.Outputs(value=inputs.value)


@pytest.fixture
def runner() -> NodeRunner:
    registry = builtin_registry().copy()
    registry.register(Exploding)
    registry.register(AsyncExploding)
    return NodeRunner(registry, MemoryArtifactStore(), worker="here")


def request(type_name: str, **fields: Any) -> RunRequest:
    node = fields.pop("node", "n")
    return RunRequest(
        run_id=f"j:main:0:{node}",
        job_id="j",
        loop="main",
        iteration=0,
        node_id=node,
        type_name=type_name,
        **fields,
    )


# the runner ---------------------------------------------------------------------------
def test_a_failing_node_returns_its_error_with_a_traceback_from_its_own_frames(
    runner: NodeRunner,
) -> None:
    result = runner.run(request("Exploding", inputs={"value": 7}))

    assert (result.status, result.outputs, result.worker) == ("failed", None, "here")
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("ValueError", "cannot take 7")
    assert str(result.error) == "ValueError: cannot take 7"
    assert result.error.retryable
    trace = result.error.traceback or ""
    assert trace.startswith("Traceback (most recent call last):")
    assert ", in run\n" in trace and ", in _explode_in_sync_node\n" in trace
    assert trace.rstrip().endswith("ValueError: cannot take 7")
    assert "runner.py" not in trace  # the runner's own frames are left out


@pytest.mark.parametrize("how", ["run", "run_async"])
def test_an_async_nodes_traceback_starts_at_the_node_not_at_the_event_loop(
    runner: NodeRunner, how: str
) -> None:
    spec = request("AsyncExploding", inputs={"value": 3})
    result = runner.run(spec) if how == "run" else asyncio.run(runner.run_async(spec))

    assert result.error is not None and str(result.error) == "ValueError: cannot await 3"
    trace = result.error.traceback or ""
    assert ", in _explode_in_async_node\n" in trace
    assert "runner.py" not in trace and "base_events.py" not in trace


def test_a_fatal_node_error_is_returned_not_retryable(runner: NodeRunner) -> None:
    result = runner.run(request("Exploding", config={"fatal": True}))

    assert result.error is not None
    assert (result.error.type, result.error.retryable) == ("FatalNodeError", False)
    assert "never worth a retry" in (result.error.traceback or "")


def test_an_error_the_runner_raises_itself_keeps_its_frames(runner: NodeRunner) -> None:
    result = runner.run(request("Exploding", inputs={"value": "not a number"}))

    assert result.error is not None and result.error.type == "FatalNodeError"
    assert "input 'value' of 'n'" in result.error.message
    assert "runner.py" in (result.error.traceback or "")


# JSON -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "result",
    [
        RunResult("j:main:0:a", 1, "succeeded", {"value": [1, {"x": None}]}, worker="w"),
        RunResult("j:main:0:a", 2, "cached", {}),
        RunResult("j:ticks:3:ticks", 1, "succeeded", {"item": 3}, cursor={"at": 4}, delivery="m"),
        RunResult("j:ticks:4:ticks", 1, "succeeded", {}, exhausted=True),
        RunResult("j:ticks:4:reader", 1, "succeeded", {}, idle=True, cursor=None),
        RunResult(
            "j:main:0:g.1.a", 3, "failed", None, RunError("NodeError", "no", True, TRACEBACK)
        ),
        RunResult("j:main:0:a", 1, "failed", None, RunError("FatalNodeError", "x", False)),
        RunResult("j:main:0:a", 1, "failed", None, RunError("", "text without a type", False)),
    ],
    ids=lambda r: f"{r.status}-{r.run_id}",
)
def test_a_result_survives_its_json(result: RunResult) -> None:
    data = result.to_json()

    assert RunResult.from_json(data) == result
    assert "retryable" not in data  # it belongs to the error
    if result.error is not None:
        assert data["error"]["type"] == result.error.type
        assert data["error"].get("traceback") == result.error.traceback


def test_fields_at_their_defaults_are_left_out_of_the_json() -> None:
    data = RunResult("j:main:0:a", 1, "succeeded", {"value": 1}).to_json()

    assert data == {
        "run_id": "j:main:0:a",
        "attempt": 1,
        "status": "succeeded",
        "outputs": {"value": 1},
    }


def test_a_journal_entry_of_the_old_shape_reads_as_a_structured_error() -> None:
    old = {
        "run_id": "j:items:0:flaky",
        "attempt": 1,
        "status": "failed",
        "outputs": None,
        "error": "NodeError: node 'flaky' (Flaky) fails attempt 1 of the first 2",
        "retryable": False,
        "cursor": None,
        "exhausted": False,
        "idle": False,
        "delivery": None,
        "started_at": 1.0,
        "finished_at": 2.0,
        "worker": "embedded",
    }

    result = RunResult.from_json(old)

    assert result.error == RunError(
        "NodeError", "node 'flaky' (Flaky) fails attempt 1 of the first 2", False, None
    )
    assert (result.started_at, result.finished_at, result.worker) == (1.0, 2.0, "embedded")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"attempt": 1, "status": "succeeded"},
        {"run_id": "j:main:0:a", "attempt": "1", "status": "succeeded"},
        {"run_id": "j:main:0:a", "attempt": 1, "status": "done"},
        {"run_id": "j:main:0:a", "attempt": 1, "status": "succeeded", "outputs": [1]},
        {"run_id": "j:main:0:a", "attempt": 1, "status": "succeeded", "colour": "red"},
        {"run_id": "j:main:0:a", "attempt": 1, "status": "failed", "error": 3},
        {"run_id": "j:main:0:a", "attempt": 1, "status": "failed", "error": {"type": "E"}},
    ],
)
def test_what_is_not_a_run_result_is_refused_with_a_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match=r"run (result|error)"):
        RunResult.from_json(data)


# errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["ValueError: no", "ValueError: ", "E: a: b", "node 'x' failed: why", "plain"]
)
def test_an_error_recorded_as_text_reads_back_as_the_same_text(text: str) -> None:
    assert str(RunError.parse(text)) == text


def test_an_exception_makes_an_error_with_its_traceback() -> None:
    try:
        _explode_in_sync_node(5)
    except ValueError as exc:
        error = RunError.of(exc)

    assert (error.type, error.message, error.retryable) == ("ValueError", "cannot take 5", True)
    assert error.traceback is not None and ", in _explode_in_sync_node\n" in error.traceback


# from the store -------------------------------------------------------------------------
def a_record(status: str, **fields: Any) -> RunRecord:
    return RunRecord(
        run_id="j:main:0:a",
        job_id="j",
        loop="main",
        iteration=0,
        node_id="a",
        type_name="Add",
        status=status,
        attempt=2,
        worker="w1",
        started_at=1.0,
        finished_at=2.0,
        **fields,
    )


def test_a_stored_success_reads_back_as_its_result() -> None:
    result = RunResult.from_record(a_record("succeeded", outputs={"sum": 3}))

    assert result == RunResult(
        "j:main:0:a", 2, "succeeded", {"sum": 3}, started_at=1.0, finished_at=2.0, worker="w1"
    )


def test_a_stored_failure_reads_back_with_its_error_and_traceback_not_retryable() -> None:
    record = a_record("failed", error="NodeError: no", traceback=TRACEBACK)

    result = RunResult.from_record(record)

    assert (result.status, result.outputs) == ("failed", {})
    assert result.error == RunError("NodeError", "no", False, TRACEBACK)


@pytest.mark.parametrize("status", ["skipped", "cancelled"])
def test_a_run_settled_otherwise_reads_back_as_a_failure_naming_its_status(status: str) -> None:
    result = RunResult.from_record(a_record(status))

    assert result.status == "failed"
    assert result.error is not None and not result.error.retryable
    assert f"recorded {status}" in str(result.error)
