"""DESIGN 3.10 and 3.11 in the embedded engine: the GPU FIFO and the three pools.

These tests define small node types of their own, registered in a copy of the
built-in registry; they are engine tests, not part of the conformance suite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from nodes.library import builtin_registry
from orchestrator import (
    Client,
    Node,
    NodeConfig,
    NodeRegistry,
    Ports,
    Resources,
    RunContext,
    Workflow,
    WorkflowBuilder,
)
from orchestrator.settings import Settings

pytestmark = pytest.mark.timeout(60)

GPU_NAP_S = 0.05
ASYNC_NAP_S = 0.2


# node types of these tests ------------------------------------------------------------
class GpuLog:
    """What the GPU node type saw: (index, start, end, thread), from any thread."""

    entries: list[tuple[int, float, float, str]] = []
    lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls.lock:
            cls.entries = []

    @classmethod
    def add(cls, entry: tuple[int, float, float, str]) -> None:
        with cls.lock:
            cls.entries.append(entry)


class FakeGpu(Node):
    """Holds one GPU for a short while and logs when."""

    resources = Resources(gpu=1)

    class Config(NodeConfig):
        index: int

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        index: int

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        start = time.monotonic()
        time.sleep(GPU_NAP_S)
        GpuLog.add((self.config.index, start, time.monotonic(), threading.current_thread().name))
        return self.Outputs(index=self.config.index)


class AsyncNap(Node):
    """Awaits a sleep, then says which thread's event loop ran it."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        thread: str

    async def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        await asyncio.sleep(ASYNC_NAP_S)
        return self.Outputs(thread=threading.current_thread().name)


class InlineWhere(Node):
    """A cheap node that promises to run inline; says which thread ran it."""

    inline = True

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        thread: str

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(thread=threading.current_thread().name)


class PooledWhere(Node):
    """The same node without the inline promise."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        thread: str

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(thread=threading.current_thread().name)


def _only_in_this_process() -> type[Node]:
    """A type defined in a function: a process-pool child cannot import it."""

    class OnlyInThisProcess(Node):
        """Registered in the test's registry only: a process-pool child cannot build it."""

        class Config(NodeConfig):
            label: str = Field(default="x")

        class Inputs(Ports):
            value: Any = None

        class Outputs(Ports):
            value: Any

        def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
            return self.Outputs(value=inputs.value)

    return OnlyInThisProcess


def _registry() -> NodeRegistry:
    registry = builtin_registry().copy()
    for node_type in (FakeGpu, AsyncNap, InlineWhere, PooledWhere, _only_in_this_process()):
        registry.register(node_type)
    return registry


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """An embedded client over the test registry, with a small process pool."""
    settings = Settings(home=tmp_path / "home", processes=2, threads=8)
    with Client.embedded(settings=settings, registry=_registry()) as embedded:
        yield embedded


def _fan_out(name: str, node_type: str, count: int, pool: str | None = None) -> Workflow:
    """``count`` nodes of ``node_type`` fed by one source: a Constant in the main stage,
    or a one-item Range loop when ``pool`` is given. Each one's output is an Output."""
    b = WorkflowBuilder(name)
    if pool is None:
        source = b.node("source", "Constant", config={"value": 1})
    else:
        source = b.node("source", "Range", config={"stop": 1})
        b.loop("source", pool=pool)
    for i in range(count):
        config = {"index": i} if node_type == "FakeGpu" else None
        node = b.node(f"n{i}", node_type, config=config)
        out = b.node(f"out{i}", "Output", config={"name": f"n{i}", "collect": "last"})
        b.edge(source["value"], node["value"])
        b.edge(node[_OUTPUT_PORT[node_type]], out["value"])
    return b.build()


_OUTPUT_PORT = {
    "FakeGpu": "index",
    "AsyncNap": "thread",
    "InlineWhere": "thread",
    "PooledWhere": "thread",
    "Sleep": "value",
    "OnlyInThisProcess": "value",
}


# GPU FIFO --------------------------------------------------------------------------
def test_gpu_runs_go_one_at_a_time_in_dispatch_order(client: Client) -> None:
    GpuLog.reset()
    count = 8
    result = client.submit(_fan_out("gpu-fifo", "FakeGpu", count)).wait(timeout=30)

    assert result.status == "completed", result.error
    assert result.outputs == {f"n{i}": i for i in range(count)}
    entries = sorted(GpuLog.entries, key=lambda e: e[1])
    assert [e[0] for e in entries] == list(range(count))
    for earlier, later in itertools.pairwise(entries):
        assert earlier[2] <= later[1], f"GPU runs {earlier[0]} and {later[0]} overlap"
    assert {e[3] for e in entries} == {"segue-gpu_0"}
    runs = [r for r in client.runs(result.job) if r.type == "FakeGpu"]
    assert {r.queue for r in runs} == {"gpu"}


def test_gpu_runs_of_two_jobs_never_overlap(client: Client) -> None:
    GpuLog.reset()
    first = client.submit(_fan_out("gpu-a", "FakeGpu", 4))
    second = client.submit(_fan_out("gpu-b", "FakeGpu", 4))
    assert first.wait(timeout=30).status == "completed"
    assert second.wait(timeout=30).status == "completed"

    entries = sorted(GpuLog.entries, key=lambda e: e[1])
    assert len(entries) == 8
    for earlier, later in itertools.pairwise(entries):
        assert earlier[2] <= later[1]


# process pool ----------------------------------------------------------------------
def test_built_in_nodes_of_a_process_loop_run_in_child_processes(client: Client) -> None:
    b = WorkflowBuilder("in-children")
    ticks = b.node("ticks", "Range", config={"stop": 4})
    square = b.node("square", "Math", config={"op": "mul"})
    text = b.node("text", "Format", config={"template": "squared: {value}"})
    out = b.node("out", "Output", config={"name": "lines"})
    b.edge(ticks["value"], square["a"]).edge(ticks["value"], square["b"])
    b.edge(square["result"], text["value"]).edge(text["text"], out["value"])
    b.loop("ticks", pool="process")

    result = client.submit(b.build()).wait(timeout=45)

    assert result.status == "completed", result.error
    assert result.outputs == {"lines": [f"squared: {i * i}" for i in range(4)]}
    # Output runs are resolved by the scheduler itself; every other run went to a child.
    runs = [r for r in client.runs(result.job, "ticks") if r.type != "Output"]
    assert {r.node for r in runs} == {"ticks", "square", "text"}
    workers = {r.worker for r in runs}
    assert all(w is not None and w.startswith("process-") for w in workers), workers
    pids = {int(w.removeprefix("process-")) for w in workers if w is not None}
    assert os.getpid() not in pids
    assert {r.queue for r in runs} == {"process"}


def test_the_process_pool_hands_children_json_requests(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    original = cf.ProcessPoolExecutor.submit

    def spy(pool: cf.ProcessPoolExecutor, fn: Any, request: Any) -> Any:
        sent.append(request)
        return original(pool, fn, request)

    monkeypatch.setattr(cf.ProcessPoolExecutor, "submit", spy)
    b = WorkflowBuilder("json-only")
    ticks = b.node("ticks", "Items", config={"items": [{"k": [1, 2.5, None]}, "two"]})
    fmt = b.node("fmt", "Format", config={"template": "{value}"})
    out = b.node("out", "Output", config={"name": "texts"})
    b.edge(ticks["item"], fmt["value"]).edge(fmt["text"], out["value"])
    b.loop("ticks", pool="process")

    result = client.submit(b.build()).wait(timeout=45)

    assert result.status == "completed", result.error
    assert result.outputs == {"texts": ["{'k': [1, 2.5, None]}", "two"]}
    assert len(sent) == 5  # two items, the exhausted call, two Format runs
    for request in sent:
        assert type(request) is dict
        assert json.loads(json.dumps(request, allow_nan=False)) == request
    fmt_inputs = [r["inputs"] for r in sent if r["node_id"] == "fmt"]
    assert fmt_inputs == [{"value": {"k": [1, 2.5, None]}}, {"value": "two"}]


def test_a_type_the_child_registry_lacks_fails_the_run_by_name_instead_of_hanging(
    client: Client,
) -> None:
    job = client.submit(_fan_out("unknown-in-child", "OnlyInThisProcess", 1, pool="process"))
    result = job.wait(timeout=45)

    assert result.status == "failed"
    assert result.loops["source"].status == "failed"
    assert result.error is not None
    assert "UnknownNodeTypeError: unknown node type 'OnlyInThisProcess'" in result.error
    (run,) = [r for r in job.runs() if r.node == "n0"]
    assert run.status == "failed"
    assert run.attempt == 1  # an unknown type is not worth a retry
    assert run.error is not None and "'OnlyInThisProcess'" in run.error


# asyncio pool ----------------------------------------------------------------------
def test_the_asyncio_pool_runs_async_nodes_concurrently_on_one_event_loop(
    client: Client,
) -> None:
    count = 10
    started = time.monotonic()
    result = client.submit(_fan_out("naps", "AsyncNap", count, pool="asyncio")).wait(timeout=30)
    elapsed = time.monotonic() - started

    assert result.status == "completed", result.error
    assert result.outputs == {f"n{i}": "segue-asyncio" for i in range(count)}
    assert elapsed < count * ASYNC_NAP_S / 2, f"{count} naps took {elapsed:.2f}s"
    naps = [r for r in client.runs(result.job, "source") if r.type == "AsyncNap"]
    assert len(naps) == count
    assert {r.queue for r in naps} == {"asyncio"}


# thread pool -----------------------------------------------------------------------
def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_the_thread_pool_runs_blocking_sync_nodes_in_parallel(client: Client) -> None:
    b = WorkflowBuilder("sleepers")
    source = b.node("source", "Constant", config={"value": 1})
    for i in range(6):
        nap = b.node(f"nap{i}", "Sleep", config={"seconds": 0.2})
        b.edge(source["value"], nap["value"])
    started = time.monotonic()
    result = client.submit(b.build()).wait(timeout=30)
    elapsed = time.monotonic() - started

    assert result.status == "completed", result.error
    assert elapsed < 0.6, f"six 0.2 s sleeps took {elapsed:.2f}s"
    naps = [r for r in client.runs(result.job) if r.type == "Sleep"]
    assert len(naps) == 6
    intervals = [(r.started_at, r.finished_at) for r in naps]
    assert _peak_overlap([(s, e) for s, e in intervals if s is not None and e is not None]) >= 3
    assert len([i for i in intervals if None not in i]) == 6
    assert all(r.worker == "embedded" for r in naps)


def test_inline_types_run_on_the_engine_thread_and_others_on_pool_threads(
    client: Client,
) -> None:
    b = WorkflowBuilder("where")
    source = b.node("source", "Constant", config={"value": 1})
    inline = b.node("inline", "InlineWhere")
    pooled = b.node("pooled", "PooledWhere")
    nap = b.node("nap", "Sleep", config={"seconds": 0})
    where_nap = b.node("after_nap", "InlineWhere")
    for name, node, port in (
        ("inline", inline, "thread"),
        ("pooled", pooled, "thread"),
        ("after_nap", where_nap, "thread"),
    ):
        out = b.node(f"out_{name}", "Output", config={"name": name})
        b.edge(node[port], out["value"])
    b.edge(source["value"], inline["value"]).edge(source["value"], pooled["value"])
    b.edge(source["value"], nap["value"]).edge(nap["value"], where_nap["value"])

    result = client.submit(b.build()).wait(timeout=30)

    assert result.status == "completed", result.error
    assert result.outputs["inline"] == "segue-driver"
    assert result.outputs["after_nap"] == "segue-driver"
    assert result.outputs["pooled"].startswith("segue-thread_")
