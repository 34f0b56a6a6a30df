"""DESIGN 3.6 and 3.9: groups map a sub-workflow in parallel and keep the input order;
cacheable nodes reuse stored outputs across jobs."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)

STEP_S = 0.08


def _batches_workflow(executor: Harness, batches: list[list[int]]) -> Workflow:
    """An outer group over ``batches``; each item runs its batch one step at a time.

    Sleep's duration is configuration, so an item's duration is made to grow with
    its batch's length by an inner group of ``STEP_S`` sleeps run one by one.
    """
    step = {
        "name": "one-step",
        "nodes": [
            {"id": "x", "type": "Input", "config": {"name": "item"}},
            {"id": "nap", "type": "Sleep", "config": {"seconds": STEP_S}},
            {"id": "y", "type": "Output", "config": {"name": "result"}},
        ],
        "edges": [{"from": "x.value", "to": "nap.value"}, {"from": "nap.value", "to": "y.value"}],
    }
    batch = {
        "name": "one-batch",
        "nodes": [
            {"id": "batch", "type": "Input", "config": {"name": "batch"}},
            {"id": "inner", "type": "Group", "config": {"workflow": step, "max_parallel": 1}},
            {"id": "done", "type": "Output", "config": {"name": "done"}},
        ],
        "edges": [
            {"from": "batch.value", "to": "inner.items"},
            {"from": "inner.results", "to": "done.value"},
        ],
    }
    b = executor.builder("group-order")
    batches_node = b.node("batches", "Constant", config={"value": batches})
    outer = b.node("outer", "Group", config={"workflow": batch, "input": "batch", "output": "done"})
    out = b.node("out", "Output", config={"name": "results"})
    b.edge(batches_node["value"], outer["items"]).edge(outer["results"], out["value"])
    return b.build()


# groups ------------------------------------------------------------------------------
def test_a_group_lists_results_in_input_order_although_later_items_finish_first(
    executor: Harness,
) -> None:
    batches = [[4, 4, 4, 4], [3, 3, 3], [2, 2], [1]]
    job = executor.submit(_batches_workflow(executor, batches))

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"results": batches}
    finished = {}
    for run in job.runs("main"):
        if run.node.startswith("outer.") and run.finished_at is not None:
            item = int(run.node.split(".")[1])
            finished[item] = max(finished.get(item, 0.0), run.finished_at)
    assert sorted(finished, key=finished.__getitem__) == [3, 2, 1, 0]


def test_a_group_runs_its_items_in_parallel(executor: Harness) -> None:
    job = executor.submit(_batches_workflow(executor, [[1], [2], [3], [4]]))

    assert job.wait(timeout=30).status == "completed"
    naps = [r for r in job.runs("main") if r.node.endswith(".nap")]
    assert len(naps) == 4
    assert executor.max_overlap(naps) == 4


def test_a_group_never_runs_more_than_max_parallel_items_at_once(executor: Harness) -> None:
    workflow = executor.load(
        f"""
        name: bounded-group
        nodes:
          - {{id: numbers, type: Constant, config: {{value: [5, 6, 7, 8, 9, 10]}}}}
          - id: each
            type: Group
            config:
              max_parallel: 2
              workflow:
                name: slow-square
                nodes:
                  - {{id: x, type: Input, config: {{name: item}}}}
                  - {{id: nap, type: Sleep, config: {{seconds: {STEP_S}}}}}
                  - {{id: sq, type: Math, config: {{op: mul}}}}
                  - {{id: y, type: Output, config: {{name: result}}}}
                edges:
                  - {{from: x.value, to: nap.value}}
                  - {{from: nap.value, to: sq.a}}
                  - {{from: x.value, to: sq.b}}
                  - {{from: sq.result, to: y.value}}
          - {{id: out, type: Output, config: {{name: squares}}}}
        edges:
          - {{from: numbers.value, to: each.items}}
          - {{from: each.results, to: out.value}}
        """
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert result.outputs == {"squares": [25, 36, 49, 64, 81, 100]}
    naps = [r for r in job.runs("main") if r.node.startswith("each.") and r.node.endswith(".nap")]
    assert sorted(r.node for r in naps) == [f"each.{k}.nap" for k in range(6)]
    assert executor.max_overlap(naps) == 2


def test_a_group_over_an_empty_list_gives_an_empty_list(executor: Harness) -> None:
    workflow = executor.example("group-map")
    spec = workflow.to_dict()
    spec["nodes"][0]["config"]["value"] = []
    result = executor.run(Workflow.from_dict(spec))

    assert (result.status, result.outputs) == ("completed", {"squares": []})


# cache -------------------------------------------------------------------------------
def _cached_square(executor: Harness) -> Workflow:
    return executor.load(
        """
        name: cached-square
        nodes:
          - {id: n, type: Input, config: {name: n, default: 3}}
          - {id: square, type: Math, config: {op: mul}, cache: true}
          - {id: say, type: Format, config: {template: "square {value}"}}
          - {id: out, type: Output, config: {name: square}}
          - {id: text, type: Output, config: {name: text}}
        edges:
          - {from: n.value, to: square.a}
          - {from: n.value, to: square.b}
          - {from: square.result, to: out.value}
          - {from: square.result, to: say.value}
          - {from: say.text, to: text.value}
        """
    )


def test_a_cached_node_with_identical_inputs_is_not_run_again_in_a_later_job(
    executor: Harness,
) -> None:
    # An input no other test uses: the cluster's cache outlives a single test.
    n = 1_000 + uuid.uuid4().int % 1_000_000
    first = executor.submit(_cached_square(executor), inputs={"n": n})
    assert first.wait(timeout=30).outputs == {"square": n * n, "text": f"square {n * n}"}
    second = executor.submit(_cached_square(executor), inputs={"n": n})
    result = second.wait(timeout=30)

    assert result.status == "completed"
    assert result.outputs == {"square": n * n, "text": f"square {n * n}"}
    assert [r.status for r in executor.runs_of(first, "square")] == ["succeeded"]
    [run] = executor.runs_of(second, "square")
    assert (run.status, run.outputs) == ("cached", {"result": n * n})
    events = [e for e in second.events(timeout=10) if e.kind == "run" and e.node == "square"]
    assert [e.status for e in events] == ["cached"]


def test_a_cacheable_node_type_is_cached_without_asking(executor: Harness) -> None:
    # Format declares itself cacheable; its entry does not say `cache: true`.
    executor.run(_cached_square(executor))
    second = executor.submit(_cached_square(executor))

    assert second.wait(timeout=30).status == "completed"
    assert [r.status for r in executor.runs_of(second, "say")] == ["cached"]


def test_a_cached_node_runs_again_when_its_inputs_differ(executor: Harness) -> None:
    n = 1_000 + uuid.uuid4().int % 1_000_000  # unseen by the cluster's cache
    executor.run(_cached_square(executor), inputs={"n": n})
    other = executor.submit(_cached_square(executor), inputs={"n": n + 1})

    m = (n + 1) ** 2
    assert other.wait(timeout=30).outputs == {"square": m, "text": f"square {m}"}
    assert [r.status for r in executor.runs_of(other, "square")] == ["succeeded"]
