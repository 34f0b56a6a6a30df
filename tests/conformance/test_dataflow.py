"""DESIGN 3.1-3.4: the main stage is dataflow; loops iterate in order, never run ahead,
detach non-blocking nodes under backpressure, and carry state through feedback edges.

Timing claims are checked on the runs' recorded ``started_at``/``finished_at``,
never on sleeps in the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.client import RunInfo

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


# main stage ----------------------------------------------------------------------------
def test_independent_main_stage_nodes_run_in_parallel(executor: Harness) -> None:
    b = executor.builder("parallel")
    seed = b.node("seed", "Constant", config={"value": 1})
    left = b.node("left", "Sleep", config={"seconds": 0.3})
    right = b.node("right", "Sleep", config={"seconds": 0.3})
    b.edge(seed["value"], left["value"]).edge(seed["value"], right["value"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "completed"
    one, two = executor.runs_of(job, "left") + executor.runs_of(job, "right")
    assert one.started_at is not None and two.started_at is not None
    assert one.finished_at is not None and two.finished_at is not None
    assert max(one.started_at, two.started_at) < min(one.finished_at, two.finished_at)


def test_a_main_stage_node_starts_only_after_all_its_inputs_finished(executor: Harness) -> None:
    b = executor.builder("after-inputs")
    seed = b.node("seed", "Constant", config={"value": 3})
    slow = b.node("slow", "Sleep", config={"seconds": 0.2})
    fast = b.node("fast", "Sleep", config={"seconds": 0.01})
    add = b.node("add", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "sum"})
    b.edge(seed["value"], slow["value"]).edge(seed["value"], fast["value"])
    b.edge(slow["value"], add["a"]).edge(fast["value"], add["b"]).edge(add["result"], out["value"])
    job = executor.submit(b.build())

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"sum": 6}
    runs = {r.node: r for r in job.runs("main")}
    assert runs["add"].started_at is not None
    for source in ("seed", "slow", "fast"):
        finished = runs[source].finished_at
        if finished is not None:  # an engine may compute a Constant inline, untimed
            assert runs["add"].started_at >= finished, source


def test_the_main_stage_is_dataflow_not_a_barrier_per_topological_level(
    executor: Harness,
) -> None:
    # `second` is on level 2 and `slow` on level 1: with dataflow, `second`
    # starts as soon as `first` is done, while `slow` still runs.
    b = executor.builder("no-barrier")
    seed = b.node("seed", "Constant", config={"value": 0})
    slow = b.node("slow", "Sleep", config={"seconds": 0.5})
    first = b.node("first", "Sleep", config={"seconds": 0.01})
    second = b.node("second", "Sleep", config={"seconds": 0.01})
    b.edge(seed["value"], slow["value"]).edge(seed["value"], first["value"])
    b.edge(first["value"], second["value"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "completed"
    runs = {r.node: r for r in job.runs("main")}
    assert runs["second"].finished_at is not None and runs["slow"].finished_at is not None
    assert runs["second"].finished_at < runs["slow"].finished_at


# iteration order ---------------------------------------------------------------------
def test_a_loop_output_lists_values_in_iteration_order_for_a_descending_range(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: countdown
        nodes:
          - {id: ticks, type: Range, config: {start: 10, stop: 0, step: -3}}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: ticks.value, to: out.value}
        """
    )
    result = executor.run(workflow)

    assert result.status == "completed"
    assert result.outputs == {"values": [10, 7, 4, 1]}
    assert result.loops["ticks"].iterations == 4


def test_a_loop_output_lists_items_in_the_order_given(executor: Harness) -> None:
    items = ["b", "a", 3, {"k": [1, 2]}, [None], "a"]
    b = executor.builder("items-order")
    source = b.node("source", "Items", config={"items": items})
    out = b.node("out", "Output", config={"name": "items"})
    b.edge(source["item"], out["value"])
    result = executor.run(b.build())

    assert result.status == "completed"
    assert result.outputs == {"items": items}


# the producer's pace -------------------------------------------------------------------
def test_the_producer_never_asks_for_the_next_item_before_the_iteration_is_done(
    executor: Harness,
) -> None:
    b = executor.builder("paced")
    ticks = b.node("ticks", "Range", config={"stop": 5})
    nap = b.node("nap", "Sleep", config={"seconds": 0.05})
    double = b.node("double", "Math", config={"op": "mul"})
    out = b.node("out", "Output", config={"name": "doubled"})
    b.edge(ticks["value"], nap["value"]).edge(nap["value"], double["a"])
    b.edge(ticks["value"], double["b"]).edge(double["result"], out["value"])
    job = executor.submit(b.build())

    result = job.wait(timeout=30)
    assert result.outputs == {"doubled": [0, 1, 4, 9, 16]}
    by_iteration: dict[int, list[RunInfo]] = {}
    for run in job.runs("ticks"):
        by_iteration.setdefault(run.iteration, []).append(run)
    assert sorted(by_iteration) == [0, 1, 2, 3, 4]
    for i in range(4):
        producer = next(r for r in by_iteration[i + 1] if r.node == "ticks")
        assert producer.started_at is not None
        for run in by_iteration[i]:
            if run.finished_at is not None:
                assert producer.started_at >= run.finished_at, (i, run.node)


# non-blocking nodes -----------------------------------------------------------------
def test_non_blocking_runs_overlap_the_loop_instead_of_slowing_it(executor: Harness) -> None:
    b = executor.builder("detached")
    ticks = b.node("ticks", "Range", config={"stop": 5})
    b.node("nap", "Sleep", config={"seconds": 0.2}, blocking=False)
    out = b.node("out", "Output", config={"name": "ticks"})
    b.edge(ticks["value"], "nap.value").edge(ticks["value"], out["value"])
    job = executor.submit(b.build())

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"ticks": [0, 1, 2, 3, 4]}
    naps = executor.runs_of(job, "nap", "ticks")
    producers = executor.runs_of(job, "ticks", "ticks")
    assert [r.status for r in naps] == ["succeeded"] * 5
    # A job is complete only when its detached runs are done too.
    assert all(r.finished_at is not None for r in naps)
    for i in range(4):
        started = producers[i + 1].started_at
        assert started is not None and naps[i].finished_at is not None
        assert naps[i].finished_at > started, f"iteration {i} waited for its detached run"
    first = min(r.started_at for r in producers if r.started_at is not None)
    last = max(r.finished_at for r in naps if r.finished_at is not None)
    assert last - first < 0.8  # five detached 0.2 s runs, serially, would take 1.0 s


def test_detached_runs_in_flight_never_exceed_max_inflight_nonblocking(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: backpressure
        nodes:
          - {id: ticks, type: Range, config: {stop: 6}}
          - {id: nap, type: Sleep, config: {seconds: 0.15}, blocking: false}
        edges:
          - {from: ticks.value, to: nap.value}
        loops:
          ticks: {max_inflight_nonblocking: 2}
        """
    )
    job = executor.submit(workflow)

    assert job.wait(timeout=30).status == "completed"
    naps = executor.runs_of(job, "nap", "ticks")
    assert [r.status for r in naps] == ["succeeded"] * 6
    assert executor.max_overlap(naps) == 2


def test_a_jsonl_sink_writes_exactly_one_line_per_run(executor: Harness, tmp_path: Path) -> None:
    path = tmp_path / "sink" / "values.jsonl"
    b = executor.builder("sink-once")
    ticks = b.node("ticks", "Range", config={"start": 1, "stop": 8})
    square = b.node("square", "Math", config={"op": "mul"})
    log = b.node("log", "JsonlSink", config={"path": str(path)})
    b.edge(ticks["value"], square["a"]).edge(ticks["value"], square["b"])
    b.edge(square["result"], log["value"])
    job = executor.submit(b.build())

    assert job.wait(timeout=30).status == "completed"
    runs = executor.runs_of(job, "log", "ticks")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == len(runs) == 7
    assert sorted(line["run"] for line in lines) == sorted(r.run_id for r in runs)
    assert sorted(line["value"] for line in lines) == [n * n for n in range(1, 8)]


# feedback ------------------------------------------------------------------------------
def test_feedback_carries_a_running_sum_from_each_iteration_into_the_next(
    executor: Harness,
) -> None:
    b = executor.builder("running-sum")
    ticks = b.node("ticks", "Range", config={"start": 1, "stop": 6})
    total = b.node("total", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "sums"})
    b.edge(ticks["value"], total["a"])
    b.edge(total["result"], total["b"], feedback=True, initial=100)
    b.edge(total["result"], out["value"])
    result = executor.run(b.build())

    assert result.status == "completed"
    assert result.outputs == {"sums": [101, 103, 106, 110, 115]}


def test_feedback_delivers_the_previous_iterations_value_and_initial_in_iteration_zero(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: lagged
        nodes:
          - {id: ticks, type: Range, config: {start: 1, stop: 5}}
          - {id: zero, type: Constant, config: {value: 0}}
          - {id: echo, type: Math, config: {op: add}}
          - {id: pair, type: Math, config: {op: sub}}
          - {id: out, type: Output, config: {name: differences}}
        edges:
          - {from: ticks.value, to: echo.a}
          - {from: zero.value, to: echo.b}
          - {from: ticks.value, to: pair.a}
          - {from: echo.result, to: pair.b, feedback: true, initial: -10}
          - {from: pair.result, to: out.value}
        """
    )
    result = executor.run(workflow)

    # Iteration 0: 1 - (-10); iteration i: value(i) - value(i-1).
    assert result.status == "completed"
    assert result.outputs == {"differences": [11, 1, 1, 1]}
