"""The built-in node library, each node driven through its real run/produce."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import JsonValue, ValidationError

import nodes
from nodes import (
    EXHAUSTED,
    DuplicateNodeTypeError,
    Exhausted,
    FatalNodeError,
    Node,
    NodeError,
    Produced,
    Producer,
    RunContext,
    Sink,
)
from nodes.library import (
    BUILTIN_TYPES,
    Constant,
    Flaky,
    Format,
    Input,
    Items,
    JsonlSink,
    Math,
    Output,
    Preview,
    QueueReader,
    QueueWriter,
    Range,
    Sleep,
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
    "Count",
    "Compare",
    "Tokens",
    "Join",
    "Comment",
}
FILE_NODE_NAMES = {"ReadFile", "WriteFile", "ReadText", "WriteText"}
TORCH_NODE_NAMES = {"TorchRandomBatch", "TorchEmbed"}
STREAM_HELPER_NAMES = {"Take", "FlakyStream"}  # for building and testing stream pipelines


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
    names = DESIGN_NAMES | FILE_NODE_NAMES | TORCH_NODE_NAMES | STREAM_HELPER_NAMES
    assert set(builtin_registry().names()) == names
    assert len(BUILTIN_TYPES) == len(names)


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
