"""The built-in node library, each node driven through its real run/produce."""

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
    EXHAUSTED,
    DuplicateNodeTypeError,
    Exhausted,
    FatalNodeError,
    LocalArtifactStore,
    Node,
    NodeDefinitionError,
    NodeError,
    Produced,
    Producer,
    Resources,
    RunContext,
    Sink,
)
from nodes.library import (
    BUILTIN_TYPES,
    Constant,
    Flaky,
    Format,
    Group,
    Input,
    Items,
    JsonlSink,
    Math,
    Output,
    Preview,
    QueueReader,
    QueueWriter,
    Range,
    ReadFile,
    ReadText,
    Sleep,
    TorchMatmul,
    WriteFile,
    WriteText,
    builtin_registry,
    default_registry,
)
from nodes.library import producers as producers_module

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


# --- registry -----------------------------------------------------------------


def test_builtin_registry_holds_exactly_the_design_names_and_the_file_nodes() -> None:
    assert set(builtin_registry().names()) == DESIGN_NAMES | FILE_NODE_NAMES
    assert len(BUILTIN_TYPES) == len(DESIGN_NAMES | FILE_NODE_NAMES)


def test_builtin_registry_is_a_fresh_instance_each_call() -> None:
    first = builtin_registry()
    first.register(type("Extra", (Node,), {"__doc__": "An extra type."}))
    assert "Extra" not in builtin_registry()


def test_default_registry_is_built_once_and_includes_the_builtins() -> None:
    assert default_registry() is default_registry()
    assert set(default_registry().names()) >= DESIGN_NAMES


def test_registering_another_class_under_a_builtin_name_raises() -> None:
    class Range(Node):
        """Not the built-in Range."""

    registry = builtin_registry()
    with pytest.raises(DuplicateNodeTypeError, match="'Range'"):
        registry.register(Range)


def test_registering_a_builtin_again_is_a_no_op() -> None:
    registry = builtin_registry()
    registry.register(producers_module.Range)
    assert len(registry) == len(BUILTIN_TYPES)


def test_the_sdk_package_exports_the_registries() -> None:
    assert nodes.builtin_registry is builtin_registry
    assert nodes.default_registry is default_registry
    assert {"builtin_registry", "default_registry"} <= set(nodes.__all__)


@pytest.mark.parametrize("node_type", BUILTIN_TYPES, ids=lambda t: t.type_name)
def test_every_builtin_documents_itself_its_config_and_its_ports(node_type: type[Node]) -> None:
    summary = (node_type.__doc__ or "").strip().splitlines()
    assert summary and summary[0].endswith(".")
    for model in (node_type.Config, node_type.Inputs, node_type.Outputs):
        for name, field in model.model_fields.items():
            assert field.description, f"{node_type.type_name}.{model.__name__}.{name}"
    assert nodes.describe(node_type)["name"] == node_type.type_name


@pytest.mark.parametrize(
    ("node_type", "base"),
    [
        (Preview, Sink),
        (JsonlSink, Sink),
        (QueueWriter, Sink),
        (Range, Producer),
        (Items, Producer),
        (QueueReader, Producer),
        (Math, Node),
    ],
)
def test_builtins_have_the_kind_the_design_gives_them(node_type: type[Node], base: type) -> None:
    assert issubclass(node_type, base)
    assert node_type.blocking is (base is not Sink)


# --- Input, Output, Constant, Preview -----------------------------------------


def test_input_reads_the_job_input_over_its_default() -> None:
    node = build(Input, name="n", default=1)
    assert node.run(node.Inputs(), context(job_inputs={"n": 3})).value == 3


def test_input_falls_back_to_its_default_even_when_the_default_is_null() -> None:
    assert build(Input, name="n", default=7).run(Node.Inputs(), context()).value == 7
    assert build(Input, name="n", default=None).run(Node.Inputs(), context()).value is None


def test_input_without_a_default_or_a_job_input_fails_naming_the_input() -> None:
    with pytest.raises(FatalNodeError, match=r"'n'.*-i n=VALUE"):
        build(Input, name="n").run(Node.Inputs(), context())


def test_output_passes_its_value_through_and_collects_a_list_by_default() -> None:
    node = build(Output, name="out")
    assert node.config.collect == "list"
    assert node.run(Output.Inputs(value=[1, 2]), context()).value == [1, 2]
    assert build(Output, name="out", collect="last").config.collect == "last"
    with pytest.raises(ValidationError):
        build(Output, name="out", collect="first")


def test_constant_emits_its_configured_value() -> None:
    node = build(Constant, value={"a": [1, None]})
    assert node.run(Node.Inputs(), context()).value == {"a": [1, None]}
    with pytest.raises(ValidationError):
        build(Constant)


def test_preview_emits_the_value_and_label_into_the_event_stream() -> None:
    events: list[tuple[str, JsonValue]] = []
    node = build(Preview, label="squares")
    node.run(Preview.Inputs(value=[1, 4]), context(event_sink=lambda k, d: events.append((k, d))))
    assert events == [("preview", {"label": "squares", "value": [1, 4]})]


def test_preview_replaces_a_long_value_with_its_truncated_repr() -> None:
    events: list[tuple[str, JsonValue]] = []
    node = build(Preview, max_chars=20)
    node.run(
        Preview.Inputs(value="x" * 100), context(event_sink=lambda k, d: events.append((k, d)))
    )
    [(kind, data)] = events
    assert kind == "preview"
    assert isinstance(data, dict) and data["label"] is None
    assert data["value"] == repr("x" * 100)[:19] + "…"


# --- Range, Items -------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "step"),
    [(0, 5, 1), (2, 11, 3), (5, 0, -1), (10, -3, -4), (0, 0, 1), (3, 1, 1), (1, 3, -1)],
)
def test_range_stops_before_stop_like_python_range(start: int, stop: int, step: int) -> None:
    assert drain(build(Range, start=start, stop=stop, step=step)) == list(range(start, stop, step))


def test_range_resumes_from_its_cursor_without_repeating_an_item() -> None:
    node = build(Range, stop=10, step=2)
    first = node.produce(node.Inputs(), None, context())
    second = node.produce(node.Inputs(), first.cursor, context())
    assert (first.outputs.value, second.outputs.value) == (0, 2)
    assert drain(node, cursor=second.cursor) == [4, 6, 8]


def test_range_counts_down_from_a_cursor_with_a_negative_step() -> None:
    assert drain(build(Range, start=3, stop=-3, step=-2), cursor=1) == [1, -1]


def test_range_refuses_a_zero_step_and_a_negative_interval() -> None:
    with pytest.raises(ValidationError, match="step must not be zero"):
        build(Range, stop=3, step=0)
    with pytest.raises(ValidationError):
        build(Range, stop=3, interval_s=-1)
    with pytest.raises(ValidationError):
        build(Range, start=1)


def test_range_paces_every_item_after_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    assert drain(build(Range, stop=3, interval_s=0.5)) == [0, 1, 2]
    assert slept == [0.5, 0.5]


def test_range_refuses_a_cursor_that_is_not_an_integer() -> None:
    node = build(Range, stop=3)
    with pytest.raises(FatalNodeError, match="cursor 'x'"):
        node.produce(node.Inputs(), "x", context())


def test_items_yields_each_item_with_the_next_index_as_cursor() -> None:
    node = build(Items, items=["a", {"b": 1}, None])
    first = node.produce(node.Inputs(), None, context())
    assert (first.outputs.item, first.cursor) == ("a", 1)
    assert drain(node, cursor=1) == [{"b": 1}, None]
    assert node.produce(node.Inputs(), 3, context()) is EXHAUSTED


def test_items_with_an_empty_list_is_exhausted_at_once() -> None:
    assert drain(build(Items, items=[])) == []


# --- Math ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", 2, 3, 5),
        ("sub", 2, 3, -1),
        ("mul", 4, 2.5, 10.0),
        ("div", 7, 2, 3.5),
        ("pow", 2, 10, 1024),
        ("pow", 4, 0.5, 2.0),
        ("mod", -7, 3, 2),
        ("min", 2, 1.5, 1.5),
        ("max", 2, 1.5, 2),
        ("add", 0.1, 0.2, 0.1 + 0.2),
    ],
)
def test_math_computes_every_operation(op: str, a: float, b: float, expected: float) -> None:
    result = build(Math, op=op).run(Math.Inputs(a=a, b=b), context()).result
    assert result == expected
    assert type(result) is type(expected)


def test_math_keeps_integers_integers() -> None:
    result = build(Math, op="add").run(Math.Inputs(a=2, b=3), context()).result
    assert isinstance(result, int)


@pytest.mark.parametrize("op", ["div", "mod"])
def test_math_division_by_zero_fails_naming_the_node_and_input(op: str) -> None:
    with pytest.raises(FatalNodeError, match=r"'total'.*input 'b' is 0"):
        build(Math, op=op).run(Math.Inputs(a=1, b=0), context(node_id="total"))


@pytest.mark.parametrize(("a", "b"), [(0, -1), (-8, 0.5), (10.0, 400), (10, 100_000)])
def test_math_pow_fails_cleanly_when_the_result_is_no_json_number(a: float, b: float) -> None:
    with pytest.raises(FatalNodeError, match="'p'"):
        build(Math, op="pow").run(Math.Inputs(a=a, b=b), context(node_id="p"))


def test_math_refuses_an_unknown_operation() -> None:
    with pytest.raises(ValidationError):
        build(Math, op="xor")


# --- Format -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "value", "text"),
    [
        ("n={value}", 3, "n=3"),
        ("{value[name]} is {value[age]}", {"name": "Ada", "age": 36}, "Ada is 36"),
        ("{value[1]}", ["a", "b"], "b"),
        ("{value:.2f}", 3.14159, "3.14"),
        ("{} and {value!r}", "x", "x and 'x'"),
        ("{value:>{value}}", 3, "  3"),
    ],
)
def test_format_renders_a_template_with_the_value(template: str, value: Any, text: str) -> None:
    assert build(Format, template=template).run(Format.Inputs(value=value), context()).text == text


@pytest.mark.parametrize(
    "template",
    [
        "{value.__class__}",
        "{value.__class__.__init__.__globals__}",
        "{value[_secret]}",
        "{value._private}",
    ],
)
def test_format_refuses_private_attribute_and_item_names(template: str) -> None:
    with pytest.raises(FatalNodeError, match="private") as info:
        build(Format, template=template).run(Format.Inputs(value={"_secret": 1}), context())
    assert repr(template) in str(info.value)


@pytest.mark.parametrize(
    "template", ["{missing}", "{value[nope]}", "{value:.2f}", "{value", "{value:999999999}"]
)
def test_format_fails_with_the_template_on_a_bad_field(template: str) -> None:
    with pytest.raises(FatalNodeError, match="cannot render template"):
        build(Format, template=template).run(Format.Inputs(value={"a": 1}), context())


def test_format_is_cacheable() -> None:
    assert Format.cacheable is True


# --- Sleep, Flaky -------------------------------------------------------------


def test_sleep_waits_then_passes_the_value_through(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    assert build(Sleep, seconds=1.5).run(Sleep.Inputs(value="v"), context()).value == "v"
    assert slept == [1.5]
    with pytest.raises(ValidationError):
        build(Sleep, seconds=-1)


def test_flaky_fails_retryably_until_its_attempts_are_spent() -> None:
    node = build(Flaky, fail_times=2)
    for attempt in (1, 2):
        with pytest.raises(NodeError, match=f"attempt {attempt}.*value 7") as info:
            node.run(Flaky.Inputs(value=7), context(attempt=attempt))
        assert info.value.retryable and not isinstance(info.value, FatalNodeError)
    assert node.run(Flaky.Inputs(value=7), context(attempt=3)).value == 7


def test_flaky_always_fails_on_a_listed_value() -> None:
    node = build(Flaky, fail_on=[3, "bad"])
    for attempt in (1, 5):
        with pytest.raises(NodeError, match=rf"value 3.*attempt {attempt}"):
            node.run(Flaky.Inputs(value=3), context(attempt=attempt))
    assert node.run(Flaky.Inputs(value=4), context()).value == 4


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
    assert QueueWriter.engine_driven and QueueReader.engine_driven
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
    assert Group.subworkflow_field == "workflow" and Group.engine_driven
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
