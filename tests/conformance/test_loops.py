"""DESIGN 3.2, 3.3, 3.7 and 3.11: loops as independent tracks - their pools, bounds,
detached failures, and control requested before a loop has started."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


def _running_sum(executor: Harness, **policy: object) -> Workflow:
    b = executor.builder("running-sum")
    ticks = b.node("ticks", "Range", config={"start": 1, "stop": 6})
    total = b.node("total", "Math", config={"op": "add"})
    out = b.node("out", "Output", config={"name": "sums"})
    b.edge(ticks["value"], total["a"])
    b.edge(total["result"], total["b"], feedback=True, initial=0)
    b.edge(total["result"], out["value"])
    if policy:
        b.loop("ticks", **policy)
    return b.build()


@pytest.mark.parametrize("pool", ["thread", "asyncio", "process"])
def test_a_loop_gives_the_same_results_on_every_pool(executor: Harness, pool: str) -> None:
    job = executor.submit(_running_sum(executor, pool=pool))

    result = job.wait(timeout=45)
    assert result.status == "completed"
    assert result.outputs == {"sums": [1, 3, 6, 10, 15]}
    assert [r.status for r in executor.runs_of(job, "total", "ticks")] == ["succeeded"] * 5


def test_max_iterations_ends_the_loop_completed_after_that_many_items(executor: Harness) -> None:
    b = executor.builder("bounded")
    ticks = b.node("ticks", "Range", config={"stop": 1000})
    out = b.node("out", "Output", config={"name": "values"})
    b.edge(ticks["value"], out["value"]).loop("ticks", max_iterations=3)
    result = executor.run(b.build())

    assert result.status == "completed"
    assert result.outputs == {"values": [0, 1, 2]}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("completed", 3)


def test_a_producer_with_no_items_completes_its_loop_with_empty_outputs(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: empty
        nodes:
          - {id: ticks, type: Range, config: {start: 5, stop: 5}}
          - {id: all, type: Output, config: {name: all}}
          - {id: last, type: Output, config: {name: last, collect: last}}
        edges:
          - {from: ticks.value, to: all.value}
          - {from: ticks.value, to: last.value}
        """
    )
    result = executor.run(workflow)

    assert result.status == "completed"
    assert result.outputs == {"all": [], "last": None}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("completed", 0)


def test_two_loops_of_one_job_run_at_the_same_time(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: side-by-side
        nodes:
          - {id: left, type: Range, config: {stop: 3}}
          - {id: left_nap, type: Sleep, config: {seconds: 0.1}}
          - {id: right, type: Range, config: {stop: 3}}
          - {id: right_nap, type: Sleep, config: {seconds: 0.1}}
        edges:
          - {from: left.value, to: left_nap.value}
          - {from: right.value, to: right_nap.value}
        """
    )
    job = executor.submit(workflow)

    assert job.wait(timeout=30).status == "completed"
    left = executor.runs_of(job, "left_nap", "left")
    right = executor.runs_of(job, "right_nap", "right")
    assert len(left) == len(right) == 3
    starts = [r.started_at for r in left + right if r.started_at is not None]
    ends = [r.finished_at for r in left + right if r.finished_at is not None]
    # Serially the six naps take 0.6 s; side by side the loops end in about half.
    assert max(ends) - min(starts) < 0.5
    assert max(r.started_at or 0 for r in left) > min(r.finished_at or 0 for r in right) - 0.2


def test_a_loop_inside_a_group_maps_each_iteration_item(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: group-per-iteration
        nodes:
          - {id: rows, type: Items, config: {items: [[1, 2], [], [3]]}}
          - id: squares
            type: Group
            config:
              workflow:
                name: square
                nodes:
                  - {id: x, type: Input, config: {name: item}}
                  - {id: sq, type: Math, config: {op: mul}}
                  - {id: y, type: Output, config: {name: result}}
                edges:
                  - {from: x.value, to: sq.a}
                  - {from: x.value, to: sq.b}
                  - {from: sq.result, to: y.value}
          - {id: out, type: Output, config: {name: rows}}
        edges:
          - {from: rows.item, to: squares.items}
          - {from: squares.results, to: out.value}
        """
    )
    result = executor.run(workflow)

    assert result.status == "completed"
    assert result.outputs == {"rows": [[1, 4], [], [9]]}


# detached failures -----------------------------------------------------------------
def _detached_check(on_error: str) -> str:
    return f"""
        name: detached-failure
        nodes:
          - {{id: items, type: Items, config: {{items: [1, 2, 3, 4]}}}}
          - {{id: check, type: Flaky, config: {{fail_on: [2]}}, blocking: false}}
          - {{id: checked, type: Output, config: {{name: checked}}}}
          - {{id: seen, type: Output, config: {{name: seen}}}}
        edges:
          - {{from: items.item, to: check.value}}
          - {{from: check.value, to: checked.value}}
          - {{from: items.item, to: seen.value}}
        loops:
          items: {{on_error: {on_error}}}
        """


def test_a_failed_detached_run_counts_its_iteration_failed_under_continue(
    executor: Harness,
) -> None:
    job = executor.submit(executor.load(_detached_check("continue")))

    result = job.wait(timeout=30)
    assert result.status == "completed"
    loop = result.loops["items"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("completed", 4, 1)
    assert result.outputs == {"checked": [1, 3, 4], "seen": [1, 3, 4]}
    assert [r.status for r in executor.runs_of(job, "check", "items")] == [
        "succeeded",
        "failed",
        "succeeded",
        "succeeded",
    ]


def test_a_failed_detached_run_fails_the_loop_and_the_job_under_stop(executor: Harness) -> None:
    result = executor.run(executor.load(_detached_check("stop")))

    assert result.status == "failed"
    assert result.loops["items"].status == "failed"
    assert result.loops["items"].failed_iterations == 1
    assert result.error is not None and "check" in result.error


def test_a_detached_run_failing_after_the_producer_ran_out_still_fails_the_loop(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: detached-last
        nodes:
          - {id: items, type: Items, config: {items: [1, 2]}}
          - {id: nap, type: Sleep, config: {seconds: 0.1}, blocking: false}
          - {id: check, type: Flaky, config: {fail_on: [2]}}
        edges:
          - {from: items.item, to: nap.value}
          - {from: nap.value, to: check.value}
        loops:
          items: {on_error: stop}
        """
    )
    result = executor.run(workflow)

    assert result.status == "failed"
    loop = result.loops["items"]
    assert (loop.status, loop.iterations, loop.failed_iterations) == ("failed", 2, 1)


# control before a loop starts --------------------------------------------------------
def _loop_after_slow_main(executor: Harness) -> Workflow:
    return executor.load(
        """
        name: slow-main
        nodes:
          - {id: seed, type: Constant, config: {value: 1}}
          - {id: warmup, type: Sleep, config: {seconds: 0.3}}
          - {id: ticks, type: Range, config: {stop: 4}}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: seed.value, to: warmup.value}
          - {from: ticks.value, to: out.value}
        """
    )


def test_a_loop_stopped_before_it_started_ends_stopped_with_no_iteration(
    executor: Harness,
) -> None:
    job = executor.submit(_loop_after_slow_main(executor))
    executor.client.stop_loop(job.id, "ticks")

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"values": []}
    ticks = result.loops["ticks"]
    assert (ticks.status, ticks.iterations) == ("stopped", 0)


def test_a_loop_paused_before_it_started_waits_paused_then_runs_every_item(
    executor: Harness,
) -> None:
    job = executor.submit(_loop_after_slow_main(executor))
    executor.client.pause_loop(job.id, "ticks")

    executor.await_loop(job, "ticks", "paused")
    info = executor.loop_info(job, "ticks")
    assert (info.status, info.iterations) == ("paused", 0)
    executor.client.resume_loop(job.id, "ticks")

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"values": [0, 1, 2, 3]}
    assert result.loops["ticks"].status == "completed"


def test_cancelling_a_paused_loops_job_ends_it_cancelled(executor: Harness) -> None:
    job = executor.submit(_loop_after_slow_main(executor))
    executor.client.pause_loop(job.id, "ticks")
    executor.await_loop(job, "ticks", "paused")

    job.cancel()
    result = job.wait(timeout=10)

    assert result.status == "cancelled"
    assert result.loops["ticks"].status == "cancelled"
    assert result.loops["main"].status == "completed"
