"""Count, Compare and Comment (DESIGN section 6), driven through their real
produce/run."""

from __future__ import annotations

from typing import Any

import pytest

from nodes import FatalNodeError, Produced, RunContext, describe
from nodes.base import Role
from nodes.library import Comment, Compare, Count


def context() -> RunContext:
    return RunContext.for_run("job1", "ticks", 0, "node")


def produce(node: Count, cursor: Any) -> Produced:
    result = node.produce(node.Inputs(), cursor, context())
    assert isinstance(result, Produced)
    return result


def test_count_yields_start_then_each_step_without_end() -> None:
    node = Count.from_config({"start": 5, "step": -2})
    cursor: Any = None
    values = []
    for _ in range(1000):
        result = produce(node, cursor)  # type: ignore[arg-type]
        values.append(result.outputs.model_dump()["value"])
        cursor = result.cursor

    assert values[:4] == [5, 3, 1, -1]
    assert values[-1] == 5 - 2 * 999


def test_count_resumes_from_its_cursor() -> None:
    result = produce(Count.from_config({}), 41)  # type: ignore[arg-type]

    assert (result.outputs.model_dump(), result.cursor) == ({"value": 41}, 42)


def test_count_refuses_a_cursor_that_is_not_an_integer() -> None:
    with pytest.raises(FatalNodeError, match="cannot resume from cursor 'x'"):
        produce(Count.from_config({}), "x")  # type: ignore[arg-type]


def test_an_unpaced_count_runs_inline_and_a_paced_one_does_not() -> None:
    assert Count.runs_inline(Count.Config())
    assert not Count.runs_inline(Count.Config(interval_s=0.5))


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("lt", 1, 2, True),
        ("le", 2, 2, True),
        ("gt", 1.5, 2, False),
        ("ge", "b", "a", True),
        ("eq", {"x": [1]}, {"x": [1]}, True),
        ("ne", None, 0, True),
        ("eq", 1, 1.0, True),
        ("lt", [1, 2], [1, 3], True),
    ],
)
def test_compare_gives_a_bool(op: str, a: Any, b: Any, expected: bool) -> None:
    node = Compare.from_config({"op": op})

    result = node.run(Compare.Inputs(a=a, b=b), context())

    assert result.result is expected


def test_compare_refuses_to_order_values_of_different_kinds_naming_them() -> None:
    node = Compare.from_config({"op": "lt"})

    with pytest.raises(FatalNodeError) as caught:
        node.run(Compare.Inputs(a=3, b="a"), context())

    assert str(caught.value) == (
        "node 'node' (Compare lt): cannot order number 3 and string 'a'; "
        "compare two numbers, two strings or two lists"
    )


def test_a_comment_has_a_text_and_no_ports() -> None:
    description = describe(Comment)

    assert Comment.role is Role.COMMENT
    assert (description["inputs"], description["outputs"]) == ([], [])
    assert Comment.from_config({"text": "a note"}).config.text == "a note"
