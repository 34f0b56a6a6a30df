"""DESIGN 3.15 and section 6: loops that end themselves (`until`, `Count` with
`max_iterations` as the generation limit, `Compare`), feedback read per
iteration (3.4), `Comment` nodes that never run, and the run-time MIME check
of artifacts - on every executor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow, WorkflowInvalid

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


def _count_until(executor: Harness, limit: int, **policy: object) -> Workflow:
    b = executor.builder("count-until")
    bound = b.node("limit", "Constant", config={"value": limit})
    ticks = b.node("ticks", "Count")
    done = b.node("done", "Compare", config={"op": "ge"})
    out = b.node("out", "Output", config={"name": "values"})
    b.edge(ticks["value"], done["a"]).edge(bound["value"], done["b"])
    b.edge(ticks["value"], out["value"])
    b.loop("ticks", **policy)
    return b.build()


@pytest.mark.parametrize("pool", ["thread", "asyncio", "process"])
def test_a_loop_completes_after_the_first_iteration_whose_until_output_is_true(
    executor: Harness, pool: str
) -> None:
    job = executor.submit(_count_until(executor, 3, until="done.result", pool=pool))

    result = job.wait(timeout=45)

    assert result.status == "completed"
    assert result.outputs == {"values": [0, 1, 2, 3]}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("completed", 4)
    # the producer never runs ahead: it was asked once per iteration, no more
    assert [r.iteration for r in executor.runs_of(job, "ticks", "ticks")] == [0, 1, 2, 3]
    assert [r.outputs for r in executor.runs_of(job, "done", "ticks")] == [
        {"result": False},
        {"result": False},
        {"result": False},
        {"result": True},
    ]
    ended = [e for e in job.events() if e.kind == "loop" and e.loop == "ticks"][-1]
    assert ended.status == "completed"


def test_an_until_outside_its_loop_is_refused_at_submit_at_its_line(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: until-elsewhere
        nodes:
          - {id: limit, type: Constant, config: {value: 3}}
          - {id: ticks, type: Count}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: ticks.value, to: out.value}
        loops:
          ticks: {until: limit.value}
        """
    )
    with pytest.raises(WorkflowInvalid) as caught:
        executor.submit(workflow)

    (issue,) = caught.value.issues
    assert "until 'limit.value': node 'limit' (Constant) is in the main stage" in issue.message
    assert issue.line == 10


def test_max_iterations_is_the_generation_limit_of_an_unbounded_count(executor: Harness) -> None:
    result = executor.run(_count_until(executor, 1000, until="done.result", max_iterations=5))

    assert result.status == "completed"
    assert result.outputs == {"values": [0, 1, 2, 3, 4]}
    assert (result.loops["ticks"].status, result.loops["ticks"].iterations) == ("completed", 5)


def test_an_until_run_that_failed_gives_no_value_and_the_loop_goes_on(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: until-failing
        nodes:
          - {id: ticks, type: Count}
          - {id: shaky, type: Flaky, config: {fail_on: [1]}}
          - {id: out, type: Output, config: {name: values}}
        edges:
          - {from: ticks.value, to: shaky.value}
          - {from: shaky.value, to: out.value}
        loops:
          ticks: {until: shaky.value, on_error: continue, max_iterations: 10}
        """
    )
    result = executor.run(workflow)

    # 0 is falsy, 1 fails (no value: go on), 2 is truthy: the loop ends there
    assert result.status == "completed"
    assert result.outputs == {"values": [0, 2]}
    ticks = result.loops["ticks"]
    assert (ticks.status, ticks.iterations, ticks.failed_iterations) == ("completed", 3, 1)


def test_a_feedback_target_downstream_of_its_source_reads_the_previous_iteration(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: previous
        nodes:
          - {id: ticks, type: Count, config: {start: 1}}
          - {id: square, type: Math, config: {op: mul}}
          - {id: both, type: Math, config: {op: add}}
          - {id: out, type: Output, config: {name: sums}}
        edges:
          - {from: ticks.value, to: square.a}
          - {from: ticks.value, to: square.b}
          - {from: square.result, to: both.a}
          - {from: square.result, to: both.b, feedback: true, initial: 0}
          - {from: both.result, to: out.value}
        loops:
          ticks: {max_iterations: 4}
        """
    )
    result = executor.run(workflow)

    # this iteration's square plus the previous one's: 1+0, 4+1, 9+4, 16+9
    assert result.outputs == {"sums": [1, 5, 13, 25]}


def test_a_comment_never_runs_and_leaves_no_run_behind(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: commented
        nodes:
          - {id: about, type: Comment, config: {text: "squares of 0, 1 and 2"}}
          - {id: ticks, type: Range, config: {stop: 3}}
          - {id: square, type: Math, config: {op: mul}}
          - {id: out, type: Output, config: {name: squares}}
        edges:
          - {from: ticks.value, to: square.a}
          - {from: ticks.value, to: square.b}
          - {from: square.result, to: out.value}
        """
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)

    assert result.status == "completed"
    assert result.outputs == {"squares": [0, 1, 4]}
    assert all(run.node != "about" for run in job.runs())
    assert all(event.node != "about" for event in job.events())


def test_an_artifact_of_a_type_its_port_does_not_accept_fails_the_run_naming_both(
    executor: Harness, tmp_path: Path
) -> None:
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    b = executor.builder("wrong-type")
    read = b.node("read", "ReadFile", config={"path": str(picture)})
    text = b.node("text", "ReadText")
    out = b.node("out", "Output", config={"name": "text"})
    b.edge(read["file"], text["file"]).edge(text["text"], out["value"])
    job = executor.submit(b.build())

    result = job.wait(timeout=30)

    assert result.status == "failed"
    [run] = executor.runs_of(job, "text")
    assert (run.status, run.attempt) == ("failed", 1)  # not retryable
    assert run.error is not None
    assert run.error.startswith("ArtifactTypeError: node 'text' (ReadText) input 'file': ")
    assert run.error.endswith(" is image/png, but the port accepts text/*")
    assert result.error is not None and "input 'file'" in result.error
