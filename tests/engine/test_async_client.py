"""``AsyncClient`` mirrors the client for asyncio code (DESIGN section 6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator import (
    AsyncClient,
    JobEvent,
    JobResult,
    LoopInfo,
    UnknownJobError,
    UnknownLoopError,
    Workflow,
)
from orchestrator import WorkflowBuilder as Builder
from orchestrator.client import AsyncJob
from orchestrator.store import open_store

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


def _run(tmp_path: Path, scenario: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``scenario`` with an embedded async client in a fresh event loop."""

    async def main() -> T:
        async with AsyncClient.embedded(tmp_path / "home") as client:
            return await asyncio.wait_for(scenario(client), timeout=45)

    return asyncio.run(main())


def _sums() -> Workflow:
    b = Builder("sums")
    ticks = b.node("ticks", "Range", config={"stop": 4})
    total = b.node("total", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "total", "collect": "last"})
    b.edge(ticks["value"], total["a"])
    b.edge(total["result"], total["b"], feedback=True, initial=0)
    b.edge(total["result"], out["value"])
    return b.build()


def _paced(stop: int, interval_s: float) -> Workflow:
    b = Builder("paced")
    ticks = b.node("ticks", "Range", config={"stop": stop, "interval_s": interval_s})
    out = b.node("out", "Output", config={"name": "values"})
    b.edge(ticks["value"], out["value"])
    return b.build()


async def _until(job: AsyncJob, predicate: Callable[[JobEvent], bool]) -> JobEvent:
    async for event in job.events(timeout=30):
        if predicate(event):
            return event
    raise AssertionError(f"job {job.id} ended without the awaited event")


def _loop_is(loop: str, status: str) -> Callable[[JobEvent], bool]:
    return lambda e: e.kind == "loop" and e.loop == loop and e.status == status


def _ran_in(loop: str) -> Callable[[JobEvent], bool]:
    return lambda e: e.kind == "run" and e.loop == loop and e.status == "succeeded"


def test_events_stream_until_the_final_job_event_and_wait_returns_the_result(
    tmp_path: Path,
) -> None:
    async def scenario(client: AsyncClient) -> tuple[list[JobEvent], JobResult, list[LoopInfo]]:
        job = await client.submit(_sums())
        events = [event async for event in job.events(timeout=30)]
        return events, await job.wait(timeout=30), await job.loops()

    events, result, loops = _run(tmp_path, scenario)

    assert events[-1].kind == "job" and events[-1].status == "completed" and events[-1].final
    assert [e for e in events if e.final] == [events[-1]]
    assert [e.status for e in events if e.kind == "job"] == ["running", "completed"]
    assert ("ticks", "completed") in [(e.loop, e.status) for e in events if e.kind == "loop"]
    totals = [e for e in events if e.kind == "run" and e.node == "total"]
    assert [e.iteration for e in totals] == [0, 1, 2, 3]
    assert {e.job for e in events} == {events[0].job}
    assert result.status == "completed"
    assert result.outputs == {"total": 6}
    assert [(i.name, i.status, i.iterations) for i in loops] == [
        ("main", "completed", 1),
        ("ticks", "completed", 4),
    ]


def test_runs_and_node_health_are_awaitable(tmp_path: Path) -> None:
    async def scenario(client: AsyncClient) -> tuple[list[str], dict[str, dict[str, Any]]]:
        job = await client.submit(_sums())
        await job.wait(timeout=30)
        runs = await client.runs(job.id, "ticks")
        health = await client.node_health(job.id)
        return [f"{r.iteration}:{r.node}:{r.status}" for r in runs], health

    runs, health = _run(tmp_path, scenario)

    assert sorted(runs) == sorted(
        f"{i}:{node}:succeeded" for i in range(4) for node in ("ticks", "total", "out")
    )
    assert {node: (h["health"], h["failed"]) for node, h in health.items()} == {
        "ticks": ("healthy", 0),
        "total": ("healthy", 0),
        "out": ("healthy", 0),  # every recorded run counts, as on a cluster
    }
    assert health["total"]["succeeded"] == 4


def test_an_async_client_submits_a_workflow_file_with_inputs(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"

    async def scenario(client: AsyncClient) -> JobResult:
        job = await client.submit(examples / "quickstart.yaml", {"n": 5})
        return await job.wait(timeout=30)

    result = _run(tmp_path, scenario)
    assert result.outputs == {"total": 35, "message": "n squared plus 2n is 35"}


def test_pause_resume_and_stop_steer_a_paced_loop(tmp_path: Path) -> None:
    async def scenario(client: AsyncClient) -> tuple[int, int, JobResult]:
        job = await client.submit(_paced(1000, 0.03))
        await _until(job, _ran_in("ticks"))

        await client.pause_loop(job.id, "ticks")
        await _until(job, _loop_is("ticks", "paused"))
        paused = {i.name: i for i in await job.loops()}["ticks"]
        await asyncio.sleep(0.25)  # eight intervals: a running loop would move on
        still = {i.name: i for i in await job.loops()}["ticks"]
        assert (paused.status, still.status) == ("paused", "paused")

        await client.resume_loop(job.id, "ticks")
        await _until(job, lambda e: _ran_in("ticks")(e) and (e.iteration or 0) > paused.iterations)
        await client.stop_loop(job.id, "ticks")
        return paused.iterations, still.iterations, await job.wait(timeout=30)

    paused, still, result = _run(tmp_path, scenario)

    assert paused == still
    assert result.status == "completed"
    ticks = result.loops["ticks"]
    assert ticks.status == "stopped"
    assert paused < ticks.iterations < 1000
    assert result.outputs == {"values": list(range(ticks.iterations))}


def test_cancel_ends_a_running_job_cancelled(tmp_path: Path) -> None:
    async def scenario(client: AsyncClient) -> tuple[JobResult, float]:
        job = await client.submit(_paced(1000, 0.05))
        await _until(job, _ran_in("ticks"))
        started = time.monotonic()
        await job.cancel()
        result = await job.wait(timeout=30)
        return result, time.monotonic() - started

    result, took = _run(tmp_path, scenario)

    assert result.status == "cancelled"
    assert result.loops["ticks"].status == "cancelled"
    assert took < 2


def test_async_calls_on_unknown_jobs_and_loops_raise_the_clients_named_errors(
    tmp_path: Path,
) -> None:
    async def scenario(client: AsyncClient) -> None:
        with pytest.raises(UnknownJobError, match="nope"):
            await client.wait("nope", timeout=1)
        with pytest.raises(UnknownJobError, match="nope"):
            await client.loops("nope")
        job = await client.submit(_paced(1000, 0.05))
        with pytest.raises(UnknownLoopError, match="ticks"):
            await client.pause_loop(job.id, "tick")
        await job.cancel()
        await job.wait(timeout=30)

    _run(tmp_path, scenario)


def test_closing_the_async_client_cancels_what_still_runs(tmp_path: Path) -> None:
    async def scenario() -> str:
        client = AsyncClient.embedded(tmp_path / "home")
        job = await client.submit(_paced(1000, 0.05))
        await _until(job, _ran_in("ticks"))
        await client.close()
        return job.id

    job_id = asyncio.run(scenario())

    store = open_store(None, tmp_path / "home")
    try:
        record = store.get_job(job_id)
        loops = {r.name: r.status for r in store.list_loops(job_id)}
    finally:
        store.close()
    assert record is not None and record.status == "cancelled"
    assert loops == {"main": "completed", "ticks": "cancelled"}
