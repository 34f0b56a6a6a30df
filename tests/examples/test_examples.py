"""Every example in examples/ runs end to end and gives the outputs its comments promise.

The examples double as conformance tests: they run on every executor kind
through the conformance harness (``tests/support/harness.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import Workflow
from tests.support.harness import EXAMPLES, Harness, executor

__all__ = ["executor"]  # the fixture, run over every executor kind

pytestmark = pytest.mark.timeout(60)


def test_every_example_file_is_covered_by_a_test() -> None:
    covered = {
        "quickstart",
        "running-sum",
        "sensor",
        "sensor-loop",
        "two-loops-queue",
        "group-map",
        "retries",
        "converge",
        "token-stream",
    }
    assert {p.stem for p in EXAMPLES.glob("*.yaml")} == covered


def test_converge_sums_the_series_of_e_until_the_estimate_stops_changing(
    executor: Harness,
) -> None:
    job = executor.submit(executor.example("converge"))

    result = job.wait(timeout=45)

    assert result.status == "completed"
    assert result.outputs["e"] == 2.7182818284590455  # math.e to the last bit but one
    estimates = result.outputs["estimates"]
    assert len(estimates) == 18 and estimates[-1] == estimates[-2] == result.outputs["e"]
    assert estimates[:3] == [2.0, 2.5, 2.6666666666666665]
    k = result.loops["k"]
    assert (k.status, k.iterations, k.failed_iterations) == ("completed", 18, 0)
    assert all(r.node != "about" for r in job.runs())  # the Comment never runs


def test_token_stream_streams_the_prompt_through_a_consumer_and_joins_it_back(
    executor: Harness,
) -> None:
    prompt = "streams flow chunk by chunk"
    job = executor.submit(executor.example("token-stream"), {"prompt": prompt})

    result = job.wait(timeout=45)

    assert result.status == "completed", result.error
    assert result.outputs == {"text": prompt, "streamed": prompt}
    relayed = [
        value
        for e in job.events()
        if e.kind == "chunk" and e.node == "relay"
        for value in e.data["values"]
    ]
    assert relayed == ["streams ", "flow ", "chunk ", "by ", "chunk"]
    [tokens] = executor.runs_of(job, "tokens")
    [relay] = executor.runs_of(job, "relay")
    assert relay.started_at is not None and tokens.finished_at is not None
    assert relay.started_at < tokens.finished_at  # the consumer overlapped its producer


def test_quickstart_adds_the_square_and_the_double_of_the_default_input(
    executor: Harness,
) -> None:
    result = executor.run(executor.example("quickstart"))

    assert result.status == "completed"
    assert result.error is None
    assert result.outputs == {"total": 15, "message": "n squared plus 2n is 15"}
    assert result.loops["main"].status == "completed"


def test_quickstart_reads_the_input_n_it_was_given(executor: Harness) -> None:
    result = executor.run(executor.example("quickstart"), inputs={"n": 4})

    assert result.status == "completed"
    assert result.outputs == {"total": 24, "message": "n squared plus 2n is 24"}


def test_running_sum_keeps_state_across_iterations_through_its_feedback_edge(
    executor: Harness,
) -> None:
    result = executor.run(executor.example("running-sum"))

    assert result.status == "completed"
    assert result.outputs == {"sums": [1, 3, 6, 10, 15], "final": 15}
    assert result.loops["numbers"].status == "completed"
    assert result.loops["numbers"].iterations == 5


def test_sensor_squares_each_tick(executor: Harness) -> None:
    result = executor.run(executor.example("sensor"))

    assert result.status == "completed"
    assert result.outputs == {"squares": [0, 1, 4, 9, 16]}
    assert result.loops["ticks"].iterations == 5
    assert result.loops["ticks"].failed_iterations == 0


def test_sensor_loop_calibrates_every_reading_and_logs_each_once(
    executor: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the sink writes readings.jsonl relative to the cwd
    workflow = executor.example("sensor-loop")
    if executor.kind != "embedded":  # a worker's cwd is its own: give the sink a full path
        data = workflow.to_dict()
        for node in data["nodes"]:
            if node["type"] == "JsonlSink":
                node["config"]["path"] = str(tmp_path / "readings.jsonl")
        workflow = Workflow.from_dict(data)
    job = executor.submit(workflow)
    result = job.wait(timeout=30)

    expected = [i * 1.5 for i in range(20)]
    assert result.status == "completed"
    assert result.outputs == {"readings": expected}
    assert result.loops["ticks"].iterations == 20
    lines = [json.loads(line) for line in (tmp_path / "readings.jsonl").read_text().splitlines()]
    assert sorted(line["value"] for line in lines) == expected
    assert sorted(line["run"] for line in lines) == sorted(
        f"{job.id}:ticks:{i}:log" for i in range(20)
    )


def test_sensor_loop_previews_every_reading_in_the_event_stream(
    executor: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job = executor.submit(executor.example("sensor-loop"))
    previews = [e for e in job.events(timeout=30) if e.kind == "preview"]

    assert job.wait(timeout=30).status == "completed"
    assert sorted((e.iteration, e.data["value"]) for e in previews) == [
        (i, i * 1.5) for i in range(20)
    ]
    assert {(e.loop, e.node, e.data["label"]) for e in previews} == {("ticks", "show", "reading")}


def test_two_loops_queue_labels_every_scaled_reading_in_order(executor: Harness) -> None:
    result = executor.run(executor.example("two-loops-queue"))

    assert result.status == "completed"
    assert result.outputs == {"labels": [f"reading {10 * i}" for i in range(5)]}
    assert result.loops["readings"].status == "completed"
    assert result.loops["consume"].status == "completed"
    assert result.loops["consume"].iterations == 5


def test_group_map_squares_each_item_in_input_order(executor: Harness) -> None:
    result = executor.run(executor.example("group-map"))

    assert result.status == "completed"
    assert result.outputs == {"squares": [1, 4, 9, 16, 25]}


def test_retries_keeps_every_item_but_the_one_that_always_fails(executor: Harness) -> None:
    job = executor.submit(executor.example("retries"))
    result = job.wait(timeout=30)

    assert result.status == "completed"
    assert result.error is None
    assert result.outputs == {"kept": [1, 2, 4, 5]}
    items = result.loops["items"]
    assert (items.status, items.iterations, items.failed_iterations) == ("completed", 5, 1)
    flaky = executor.runs_of(job, "flaky", "items")
    assert [(r.iteration, r.status, r.attempt) for r in flaky] == [
        (i, "succeeded", 3) for i in range(5)
    ]
    picky = executor.runs_of(job, "picky", "items")
    assert [(r.status, r.attempt) for r in picky] == [
        ("succeeded", 1),
        ("succeeded", 1),
        ("failed", 2),
        ("succeeded", 1),
        ("succeeded", 1),
    ]
    kept = executor.runs_of(job, "kept", "items")
    assert [r.status for r in kept] == [
        "succeeded",
        "succeeded",
        "skipped",
        "succeeded",
        "succeeded",
    ]
