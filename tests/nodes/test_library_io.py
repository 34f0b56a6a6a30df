"""Built-in sinks, queue, group, torch and file nodes, run through their real code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue, ValidationError

import nodes
from nodes import (
    Exhausted,
    FatalNodeError,
    LocalArtifactStore,
    Node,
    NodeDefinitionError,
    Produced,
    Producer,
    Resources,
    Role,
    RunContext,
)
from nodes.library import (
    Group,
    JsonlSink,
    QueueReader,
    QueueWriter,
    ReadFile,
    ReadText,
    TorchMatmul,
    WriteFile,
    WriteText,
    builtin_registry,
)

DESIGN_NAMES = {
    "Input",
    "Output",
    "Constant",
    "Range",
    "Items",
    "Math",
    "Format",
    "Sleep",
    "Flaky",
    "JsonlSink",
    "QueueWriter",
    "QueueReader",
    "Group",
    "Preview",
    "TorchMatmul",
}
FILE_NODE_NAMES = {"ReadFile", "WriteFile", "ReadText", "WriteText"}
TORCH_NODE_NAMES = {"TorchRandomBatch", "TorchEmbed"}


def context(iteration: int = 0, node_id: str = "node", **kwargs: Any) -> RunContext:
    return RunContext.for_run("job1", "main", iteration, node_id, **kwargs)


def build(node_type: type[Node], **config: Any) -> Any:
    return node_type.from_config(config)


def drain(producer: Producer, cursor: JsonValue = None, limit: int = 1000) -> list[Any]:
    """Every item a producer yields from ``cursor`` on, feeding each cursor back."""
    values: list[Any] = []
    for _ in range(limit):
        result = producer.produce(producer.Inputs(), cursor, context())
        if isinstance(result, Exhausted):
            return values
        assert isinstance(result, Produced)
        values.append(next(iter(result.outputs.model_dump().values())))
        cursor = result.cursor
    raise AssertionError("producer never ended")


# --- JsonlSink ----------------------------------------------------------------


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_sink_appends_one_line_per_run_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.jsonl"
    node = build(JsonlSink, path=str(path))
    for i in range(3):
        node.run(JsonlSink.Inputs(value={"i": i}), context(iteration=i))
    assert lines(path) == [{"run": f"job1:main:{i}:node", "value": {"i": i}} for i in range(3)]


def test_jsonl_sink_writes_once_when_a_run_is_repeated(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = build(JsonlSink, path=str(path))
    node.run(JsonlSink.Inputs(value=1), context(attempt=1))
    node.run(JsonlSink.Inputs(value=1), context(attempt=2))
    build(JsonlSink, path=str(path)).run(JsonlSink.Inputs(value=1), context())
    assert lines(path) == [{"run": "job1:main:0:node", "value": 1}]


WRITER = textwrap.dedent(
    """
    import sys, time
    from nodes.context import RunContext
    from nodes.library.sinks import JsonlSink

    first, stop, start_at = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    node = JsonlSink(JsonlSink.Config(path=sys.argv[1]))
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(first, stop):
        node.run(JsonlSink.Inputs(value=i), RunContext.for_run("job1", "main", i, "node"))
    """
)


def spawn_writer(
    path: Path, first: int, stop: int, start_at: float = 0.0
) -> subprocess.Popen[bytes]:
    """A process recording runs ``first`` to ``stop - 1`` from ``start_at`` (epoch seconds) on."""
    args = [str(path), str(first), str(stop), str(start_at)]
    return subprocess.Popen([sys.executable, "-c", WRITER, *args])


def test_jsonl_sink_skips_a_run_another_process_recorded_since_it_last_looked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.jsonl"
    node = build(JsonlSink, path=str(path))
    node.run(JsonlSink.Inputs(value=0), context(iteration=0))
    assert spawn_writer(path, 1, 3).wait(timeout=60) == 0
    for i in range(4):
        node.run(JsonlSink.Inputs(value=i), context(iteration=i))
    assert [line["value"] for line in lines(path)] == [0, 1, 2, 3]


def test_jsonl_sink_never_duplicates_a_run_when_processes_race(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    # Every writer starts at the same moment and records the same 300 runs.
    start_at = time.time() + 1.5
    writers = [spawn_writer(path, 0, 300, start_at) for _ in range(6)]
    assert all(writer.wait(timeout=120) == 0 for writer in writers)
    runs = [line["run"] for line in lines(path)]
    assert sorted(runs) == sorted(f"job1:main:{i}:node" for i in range(300))


def test_jsonl_sink_rescans_a_file_that_shrank_or_was_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    node = build(JsonlSink, path=str(path))
    node.run(JsonlSink.Inputs(value=0), context())
    path.write_text("")
    node.run(JsonlSink.Inputs(value=0), context())
    assert len(lines(path)) == 1


def test_jsonl_sink_starts_a_new_line_after_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"run": "job1:main:0:node", "value": 0}\n{"run": "job1:ma')
    node = build(JsonlSink, path=str(path))
    node.run(JsonlSink.Inputs(value=0), context(iteration=0))
    node.run(JsonlSink.Inputs(value=1), context(iteration=1))
    text = path.read_text().splitlines()
    assert len(text) == 3 and json.loads(text[2]) == {"run": "job1:main:1:node", "value": 1}


def test_jsonl_sink_refuses_a_value_that_is_not_json(tmp_path: Path) -> None:
    node = build(JsonlSink, path=str(tmp_path / "out.jsonl"))
    with pytest.raises(FatalNodeError, match="not JSON"):
        node.run(JsonlSink.Inputs(value=float("nan")), context())


# --- queues and groups ----------------------------------------------------------


def test_queue_nodes_are_driven_by_the_engine_queue_backend() -> None:
    writer = build(QueueWriter, queue="jobs.ready")
    reader = build(QueueReader, queue="jobs.ready", group="g1", idle_timeout_s=0)
    assert (QueueWriter.role, QueueReader.role) == (Role.QUEUE_WRITER, Role.QUEUE_READER)
    assert QueueWriter.role.queue and QueueReader.role.queue
    assert (writer.config.scope, reader.config.scope) == ("job", "job")
    with pytest.raises(NodeDefinitionError, match="queue backend"):
        writer.run(QueueWriter.Inputs(value=1), context())
    with pytest.raises(NodeDefinitionError, match="queue backend"):
        reader.produce(reader.Inputs(), None, context())


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 201])
def test_queue_nodes_refuse_bad_queue_names(name: str) -> None:
    with pytest.raises(ValidationError):
        build(QueueWriter, queue=name)
    with pytest.raises(ValidationError):
        build(QueueReader, queue=name)


def test_queue_nodes_refuse_unknown_scopes_and_negative_timeouts() -> None:
    with pytest.raises(ValidationError):
        build(QueueWriter, queue="q", scope="cluster")
    with pytest.raises(ValidationError):
        build(QueueReader, queue="q", idle_timeout_s=-1)


def test_group_names_its_subworkflow_field_and_is_engine_driven() -> None:
    node = build(Group, workflow={"name": "inner", "nodes": [], "edges": []})
    assert Group.subworkflow_field == "workflow" and Group.role is Role.GROUP and Group.role.settled
    assert (node.config.input, node.config.output, node.config.max_parallel) == (
        "item",
        "result",
        None,
    )
    with pytest.raises(NodeDefinitionError, match="engine"):
        node.run(Group.Inputs(items=[1]), context())
    with pytest.raises(ValidationError):
        build(Group, workflow={}, max_parallel=0)


# --- TorchMatmul ----------------------------------------------------------------


def test_torch_matmul_needs_a_gpu_and_registers_without_torch() -> None:
    assert TorchMatmul.resources == Resources(gpu=1)
    assert "TorchMatmul" in builtin_registry()


def test_torch_matmul_without_torch_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(FatalNodeError, match=r"pip install 'segue\[gpu\]'"):
        build(TorchMatmul).run(TorchMatmul.Inputs(), context())


def test_torch_matmul_checksum_is_deterministic_for_a_seed_on_cpu() -> None:
    pytest.importorskip("torch")
    node = build(TorchMatmul, size=32, device="cpu")
    first = node.run(TorchMatmul.Inputs(seed=7), context())
    again = node.run(TorchMatmul.Inputs(seed=7), context())
    other = node.run(TorchMatmul.Inputs(seed=8), context())
    assert first.device == "cpu"
    assert first.checksum == again.checksum != other.checksum


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_torch_matmul_runs_every_dtype(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    node = build(TorchMatmul, size=16, dtype=dtype)
    outputs = node.run(TorchMatmul.Inputs(), context())
    assert outputs.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert outputs.checksum > 0


def test_torch_matmul_asking_for_missing_cuda_fails_at_once() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(FatalNodeError, match="'cuda'"):
        build(TorchMatmul, device="cuda").run(TorchMatmul.Inputs(), context())


# --- file nodes -----------------------------------------------------------------


def test_file_nodes_round_trip_bytes_through_a_local_artifact_store(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "in.png"
    source.write_bytes(b"\x89PNG\x00\xff")
    file = build(ReadFile, path=str(source)).run(Node.Inputs(), context(artifacts=store)).file
    assert (file.mime_type, file.size) == ("image/png", 6)
    target = tmp_path / "sub" / "out.png"
    written = build(WriteFile, path=str(target)).run(
        WriteFile.Inputs(file=file), context(artifacts=store)
    )
    assert Path(written.path) == target and target.read_bytes() == b"\x89PNG\x00\xff"
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


def test_text_nodes_round_trip_text_through_a_local_artifact_store(tmp_path: Path) -> None:
    ctx = context(artifacts=LocalArtifactStore(tmp_path))
    file = (
        build(WriteText, mime_type="text/csv", encoding="latin-1")
        .run(WriteText.Inputs(text="café"), ctx)
        .file
    )
    assert file.mime_type == "text/csv" and file.size == 4
    assert build(ReadText, encoding="latin-1").run(ReadText.Inputs(file=file), ctx).text == "café"
    with pytest.raises(FatalNodeError, match="utf-8"):
        build(ReadText).run(ReadText.Inputs(file=file), ctx)


def test_read_file_guesses_the_mime_type_unless_told(tmp_path: Path) -> None:
    ctx = context(artifacts=LocalArtifactStore(tmp_path / "a"))
    (tmp_path / "data.unknownext").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    guess = build(ReadFile, path=str(tmp_path / "data.unknownext")).run(Node.Inputs(), ctx)
    assert guess.file.mime_type == "application/octet-stream"
    told = build(ReadFile, path=str(tmp_path / "notes.txt"), mime_type="text/markdown")
    assert told.run(Node.Inputs(), ctx).file.mime_type == "text/markdown"


def test_read_file_of_a_missing_file_fails_naming_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.bin")
    with pytest.raises(FatalNodeError, match=r"nope\.bin"):
        build(ReadFile, path=missing).run(Node.Inputs(), context())


def test_text_nodes_refuse_bad_mime_types_and_unknown_encodings() -> None:
    with pytest.raises(ValidationError, match="text/"):
        build(WriteText, mime_type="image/png")
    with pytest.raises(ValidationError, match="encoding"):
        build(ReadText, encoding="no-such-codec")


def test_file_node_ports_declare_their_mime_types() -> None:
    assert nodes.output_ports(ReadFile)["file"].mime == ("*/*",)
    assert nodes.input_ports(ReadText)["file"].mime == ("text/*",)
    assert nodes.output_ports(WriteText)["file"].mime == ("text/*",)
