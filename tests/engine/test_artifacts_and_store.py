"""DESIGN sections 4 and 5 in the embedded engine: large values become artifacts,
file nodes move bytes through the artifact store, and every job, loop, run and
event lands in the SQLite store under the home folder."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from orchestrator import Client, Workflow, WorkflowBuilder
from orchestrator.settings import Settings
from orchestrator.states import RunStatus
from orchestrator.store import DEFAULT_SQLITE_NAME, open_store

pytestmark = pytest.mark.timeout(60)

THRESHOLD = 1024
BIG = "abcdefghij" * 300  # 3,000 characters: its JSON is over the threshold
FINAL_RUN_STATUSES = {s.value for s in RunStatus if s.terminal}


def _embedded(home: Path) -> Client:
    return Client.embedded(settings=Settings(home=home, artifact_threshold_bytes=THRESHOLD))


def _big_value_flow() -> Workflow:
    b = WorkflowBuilder("big-value")
    big = b.node("big", "Constant", config={"value": BIG})
    head = b.node("head", "Format", config={"template": "{value:.10}"})
    out = b.node("out", "Output", config={"name": "big"})
    head_out = b.node("head_out", "Output", config={"name": "head"})
    b.edge(big["value"], head["value"]).edge(big["value"], out["value"])
    b.edge(head["text"], head_out["value"])
    return b.build()


# artifacts -------------------------------------------------------------------------
def test_an_output_over_the_threshold_is_recorded_as_an_artifact_marker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _embedded(home) as client:
        job = client.submit(_big_value_flow())
        result = job.wait(timeout=30)
        runs = {r.node: r for r in job.runs()}

    assert result.status == "completed", result.error
    outputs = runs["big"].outputs
    assert outputs is not None and list(outputs) == ["value"]
    marker = outputs["value"]
    assert list(marker) == ["$artifact"]
    artifact = marker["$artifact"]
    assert sorted(artifact) == ["mime_type", "sha256", "size", "uri"]
    data = json.dumps(BIG).encode()
    digest = hashlib.sha256(data).hexdigest()
    assert artifact["mime_type"] == "application/json"
    assert artifact["size"] == len(data)
    assert artifact["sha256"] == digest
    stored = home / "artifacts" / digest[:2] / digest
    assert artifact["uri"] == stored.resolve().as_uri()
    assert stored.read_bytes() == data
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest


def test_the_consumer_of_an_artifact_and_the_job_outputs_get_the_original_value(
    tmp_path: Path,
) -> None:
    with _embedded(tmp_path / "home") as client:
        job = client.submit(_big_value_flow())
        result = job.wait(timeout=30)
        runs = {r.node: r for r in job.runs()}

    assert result.status == "completed", result.error
    assert runs["head"].outputs == {"text": "abcdefghij"}
    assert result.outputs["head"] == "abcdefghij"
    assert result.outputs["big"] == BIG


def test_small_outputs_stay_inline(tmp_path: Path) -> None:
    b = WorkflowBuilder("small")
    value = b.node("value", "Constant", config={"value": "x" * 200})
    out = b.node("out", "Output", config={"name": "value"})
    b.edge(value["value"], out["value"])
    with _embedded(tmp_path / "home") as client:
        job = client.submit(b.build())
        result = job.wait(timeout=30)
        runs = {r.node: r for r in job.runs()}

    assert result.outputs == {"value": "x" * 200}
    assert runs["value"].outputs == {"value": "x" * 200}
    assert not (tmp_path / "home" / "artifacts").exists()


def test_a_loop_output_collects_the_original_values_of_artifacts(tmp_path: Path) -> None:
    b = WorkflowBuilder("big-in-a-loop")
    ticks = b.node("ticks", "Range", config={"stop": 3})
    pad = b.node("pad", "Format", config={"template": "{value:>2000}"})
    out = b.node("out", "Output", config={"name": "padded"})
    b.edge(ticks["value"], pad["value"]).edge(pad["text"], out["value"])
    with _embedded(tmp_path / "home") as client:
        result = client.submit(b.build()).wait(timeout=30)

    assert result.status == "completed", result.error
    assert result.outputs == {"padded": [f"{i:>2000}" for i in range(3)]}


# file nodes ------------------------------------------------------------------------
def test_write_text_then_read_text_round_trips_through_the_artifact_store(
    tmp_path: Path,
) -> None:
    text = "héllo, wörld\nline two ✓"
    b = WorkflowBuilder("text-round-trip")
    source = b.node("source", "Constant", config={"value": text})
    write = b.node("write", "WriteText", config={"mime_type": "text/markdown"})
    read = b.node("read", "ReadText")
    out = b.node("out", "Output", config={"name": "text"})
    b.edge(source["value"], write["text"]).edge(write["file"], read["file"])
    b.edge(read["text"], out["value"])
    home = tmp_path / "home"
    with Client.embedded(home) as client:
        job = client.submit(b.build())
        result = job.wait(timeout=30)
        runs = {r.node: r for r in job.runs()}

    assert result.status == "completed", result.error
    assert result.outputs == {"text": text}
    written = runs["write"].outputs
    assert written is not None
    artifact = written["file"]  # an Artifact port carries its reference as it is
    data = text.encode()
    digest = hashlib.sha256(data).hexdigest()
    assert artifact == {
        "uri": (home / "artifacts" / digest[:2] / digest).resolve().as_uri(),
        "mime_type": "text/markdown",
        "size": len(data),
        "sha256": digest,
    }
    assert (home / "artifacts" / digest[:2] / digest).read_bytes() == data


def test_read_file_then_write_file_copies_a_file_byte_for_byte(tmp_path: Path) -> None:
    source = tmp_path / "in" / "picture.png"
    source.parent.mkdir()
    payload = bytes(range(256)) * 8
    source.write_bytes(payload)
    target = tmp_path / "out" / "deep" / "copy.png"
    b = WorkflowBuilder("copy")
    read = b.node("read", "ReadFile", config={"path": str(source)})
    write = b.node("write", "WriteFile", config={"path": str(target)})
    out = b.node("out", "Output", config={"name": "path"})
    b.edge(read["file"], write["file"]).edge(write["path"], out["value"])
    with Client.embedded(tmp_path / "home") as client:
        job = client.submit(b.build())
        result = job.wait(timeout=30)
        runs = {r.node: r for r in job.runs()}

    assert result.status == "completed", result.error
    assert result.outputs == {"path": str(target)}
    assert target.read_bytes() == payload
    read_outputs = runs["read"].outputs
    assert read_outputs is not None
    assert read_outputs["file"]["mime_type"] == "image/png"
    assert read_outputs["file"]["sha256"] == hashlib.sha256(payload).hexdigest()


def test_read_file_of_a_missing_file_fails_naming_the_node_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    b = WorkflowBuilder("missing")
    read = b.node("read", "ReadFile", config={"path": str(missing)})
    text = b.node("text", "ReadText")
    b.edge(read["file"], text["file"])
    with Client.embedded(tmp_path / "home") as client:
        result = client.submit(b.build()).wait(timeout=30)

    assert result.status == "failed"
    assert result.error is not None
    assert f"node 'read': file {str(missing)!r} does not exist" in result.error


# the SQLite store ------------------------------------------------------------------
STORE_FLOW = """
name: store
nodes:
  - id: base
    type: Constant
    config: {value: 10}
  - id: ticks
    type: Range
    config: {stop: 3}
  - id: add
    type: Math
    config: {op: add}
  - id: out
    type: Output
    config: {name: sums}
edges:
  - {from: base.value, to: add.a}
  - {from: ticks.value, to: add.b}
  - {from: add.result, to: out.value}
"""


def test_every_run_loop_and_event_of_a_job_is_in_the_sqlite_file_of_the_home(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with Client.embedded(home) as client:
        result = client.submit(Workflow.loads(textwrap.dedent(STORE_FLOW))).wait(timeout=30)
    assert result.outputs == {"sums": [10, 11, 12]}
    assert (home / DEFAULT_SQLITE_NAME).is_file()

    store = open_store(None, home)
    try:
        job = store.get_job(result.job)
        runs = store.list_runs(result.job)
        loops = {r.name: r for r in store.list_loops(result.job)}
        events = store.read_events(result.job)
    finally:
        store.close()

    assert job is not None
    assert (job.workflow, job.status, job.outputs, job.error) == (
        "store",
        "completed",
        {"sums": [10, 11, 12]},
        None,
    )
    assert job.started_at is not None and job.finished_at is not None
    assert sorted(r.run_id.split(":", 1)[1] for r in runs) == [
        "main:0:base",
        *(f"ticks:{i}:{node}" for i in range(3) for node in ("add", "out", "ticks")),
    ]
    assert {r.status for r in runs} == {"succeeded"}
    assert all(r.finished_at is not None for r in runs)
    assert [r.outputs for r in runs if r.node_id == "add"] == [
        {"result": 10},
        {"result": 11},
        {"result": 12},
    ]
    assert {n: (r.status, r.iterations, r.failed_iterations) for n, r in loops.items()} == {
        "main": ("completed", 1, 0),
        "ticks": ("completed", 3, 0),
    }
    assert [(e.kind, e.status) for e in events if e.kind == "job"] == [
        ("job", "running"),
        ("job", "completed"),
    ]
    loop_events = [(e.loop, e.status) for e in events if e.kind == "loop"]
    assert ("main", "running") in loop_events
    assert ("ticks", "running") in loop_events
    assert ("main", "completed") in loop_events
    assert loop_events[-1] == ("ticks", "completed")
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_a_failed_job_leaves_final_states_and_the_error_in_the_store(tmp_path: Path) -> None:
    b = WorkflowBuilder("fails")
    ticks = b.node("ticks", "Range", config={"stop": 5})
    flaky = b.node("flaky", "Flaky", config={"fail_on": [2]})
    b.edge(ticks["value"], flaky["value"])
    home = tmp_path / "home"
    with Client.embedded(home) as client:
        result = client.submit(b.build()).wait(timeout=30)
    assert result.status == "failed"

    store = open_store(None, home)
    try:
        job = store.get_job(result.job)
        runs = store.list_runs(result.job)
        loops = {r.name: r for r in store.list_loops(result.job)}
        events = store.read_events(result.job)
    finally:
        store.close()

    assert job is not None and job.status == "failed"
    assert job.error is not None and "fails on purpose for value 2" in job.error
    assert {r.status for r in runs} <= FINAL_RUN_STATUSES
    (failed,) = [r for r in runs if r.status == "failed"]
    assert (failed.node_id, failed.iteration) == ("flaky", 2)
    assert failed.error is not None and "fails on purpose for value 2" in failed.error
    assert (loops["ticks"].status, loops["ticks"].iterations) == ("failed", 3)
    assert ("run", "failed") in [(e.kind, e.status) for e in events if e.node == "flaky"]
    assert [e.status for e in events if e.kind == "job"] == ["running", "failed"]


def test_every_job_of_a_client_is_recorded_with_a_final_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flow = Workflow.loads(textwrap.dedent(STORE_FLOW))
    with Client.embedded(home) as client:
        ids = [client.submit(flow).id for _ in range(5)]
        for job_id in ids:
            assert client.wait(job_id, timeout=30).status == "completed"

    store = open_store(None, home)
    try:
        jobs = {j.id: j.status for j in store.list_jobs()}
        run_counts = [len(store.list_runs(job_id)) for job_id in ids]
    finally:
        store.close()
    assert jobs == dict.fromkeys(ids, "completed")
    assert run_counts == [10] * 5


def test_a_second_client_on_the_same_home_sees_the_first_clients_finished_job(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with Client.embedded(home) as first:
        result = first.submit(Workflow.loads(textwrap.dedent(STORE_FLOW))).wait(timeout=30)

    with Client.embedded(home) as second:
        loops = {info.name: (info.status, info.iterations) for info in second.loops(result.job)}
        runs = second.runs(result.job)
        again = second.wait(result.job, timeout=5)
        store = open_store(None, home)
        try:
            job = store.get_job(result.job)
        finally:
            store.close()

    assert loops == {"main": ("completed", 1), "ticks": ("completed", 3)}
    assert len(runs) == 10
    assert again == result
    assert job is not None
    assert (job.status, job.outputs) == ("completed", {"sums": [10, 11, 12]})
