"""Nodes for loops that end themselves: an unbounded counter and a comparison.

``Count`` paces a loop for ever; the loop ends on its ``until`` output (a
``Compare`` node's ``result``, say) or at its ``max_iterations`` (the
generation limit), or when an operator stops it (DESIGN 3.15).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, JsonValue

from nodes.base import Node, NodeConfig, Ports, Produced, Producer
from nodes.context import RunContext
from nodes.errors import FatalNodeError

CompareOp = Literal["lt", "le", "gt", "ge", "eq", "ne"]

_COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}


class Count(Producer):
    """Yield ``start``, ``start + step``, … without end: an unbounded producer.

    Its loop ends on the loop's ``until`` output or ``max_iterations``, or
    when it is stopped. With ``interval_s`` the loop is paced: each item after
    the first waits that long. The cursor is the next value, so a restarted
    loop resumes where it stopped.
    """

    class Config(NodeConfig):
        start: int = Field(default=0, description="First value")
        step: int = Field(default=1, description="Increment per iteration (0 repeats start)")
        interval_s: float = Field(
            default=0.0, ge=0, description="Seconds to wait before each item after the first"
        )

    class Outputs(Ports):
        value: int = Field(description="The current number")

    config: Config

    @classmethod
    def runs_inline(cls, config: Any) -> bool:
        """An unpaced count takes microseconds per item; a paced one sleeps."""
        return bool(config.interval_s == 0)

    def produce(self, inputs: Node.Inputs, cursor: JsonValue, ctx: RunContext) -> Produced:
        config = self.config
        if cursor is None:
            current = config.start
        elif isinstance(cursor, int) and not isinstance(cursor, bool):
            current = cursor
        else:
            raise FatalNodeError(
                f"producer {ctx.node_id!r} (Count) cannot resume from cursor {cursor!r}: "
                "expected an integer"
            )
        if config.interval_s > 0 and cursor is not None:  # pacing: see runs_inline
            time.sleep(config.interval_s)
        return Produced(outputs=self.Outputs(value=current), cursor=current + config.step)


class Compare(Node):
    """Compare two values: ``result`` is ``a <op> b`` as a bool.

    ``eq`` and ``ne`` take any JSON values; the orderings (``lt``, ``le``,
    ``gt``, ``ge``) take two numbers, two strings or two lists.
    """

    class Config(NodeConfig):
        op: CompareOp = Field(description="The comparison: lt, le, gt, ge, eq or ne")

    class Inputs(Ports):
        a: JsonValue = Field(description="Left operand")
        b: JsonValue = Field(description="Right operand")

    class Outputs(Ports):
        result: bool = Field(description="a <op> b")

    inline = True
    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        op, a, b = self.config.op, inputs.a, inputs.b
        try:
            result = _COMPARISONS[op](a, b)
        except TypeError:
            raise FatalNodeError(
                f"node {ctx.node_id!r} (Compare {op}): cannot order {_kind(a)} {a!r:.40} and "
                f"{_kind(b)} {b!r:.40}; compare two numbers, two strings or two lists"
            ) from None
        return self.Outputs(result=bool(result))


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(
        type(value),
        "number"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else type(value).__name__,
    )
