"""Producers that start a loop from configuration: a number range, a fixed list."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field, JsonValue, field_validator

from nodes.base import EXHAUSTED, Exhausted, Node, NodeConfig, Ports, Produced, Producer
from nodes.context import RunContext
from nodes.errors import FatalNodeError


def _cursor_int(node: Producer, cursor: JsonValue, ctx: RunContext) -> int:
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise FatalNodeError(
            f"producer {ctx.node_id!r} ({node.type_name}) cannot resume from cursor "
            f"{cursor!r}: expected an integer"
        )
    return cursor


class Range(Producer):
    """Yield integers from ``start`` up to, not including, ``stop``, like ``range``.

    A negative ``step`` counts down. With ``interval_s`` the loop is paced: each
    item after the first waits that long before it is yielded. The cursor is
    the next value, so a restarted loop resumes where it stopped.
    """

    class Config(NodeConfig):
        start: int = Field(default=0, description="First value")
        stop: int = Field(description="End of the range, exclusive")
        step: int = Field(default=1, description="Increment; negative counts down, never 0")
        interval_s: float = Field(
            default=0.0, ge=0, description="Seconds to wait before each item after the first"
        )

        @field_validator("step")
        @classmethod
        def _step_is_not_zero(cls, step: int) -> int:
            if step == 0:
                raise ValueError("step must not be zero")
            return step

    class Outputs(Ports):
        value: int = Field(description="The current number")

    config: Config

    @classmethod
    def runs_inline(cls, config: Any) -> bool:
        """An unpaced range takes microseconds per item; a paced one sleeps."""
        return bool(config.interval_s == 0)

    def produce(
        self, inputs: Node.Inputs, cursor: JsonValue, ctx: RunContext
    ) -> Produced | Exhausted:
        config = self.config
        current = config.start if cursor is None else _cursor_int(self, cursor, ctx)
        ended = current >= config.stop if config.step > 0 else current <= config.stop
        if ended:
            return EXHAUSTED
        if config.interval_s > 0 and cursor is not None:  # pacing: see runs_inline
            time.sleep(config.interval_s)
        return Produced(outputs=self.Outputs(value=current), cursor=current + config.step)


class Items(Producer):
    """Yield the configured items one per iteration, in order.

    The cursor is the index of the next item.
    """

    inline = True

    class Config(NodeConfig):
        items: list[JsonValue] = Field(description="The values to yield")

    class Outputs(Ports):
        item: Any = Field(description="The current item")

    config: Config

    def produce(
        self, inputs: Node.Inputs, cursor: JsonValue, ctx: RunContext
    ) -> Produced | Exhausted:
        index = 0 if cursor is None else _cursor_int(self, cursor, ctx)
        if index < 0:
            raise FatalNodeError(
                f"producer {ctx.node_id!r} (Items) cannot resume from negative cursor {index}"
            )
        if index >= len(self.config.items):
            return EXHAUSTED
        return Produced(outputs=self.Outputs(item=self.config.items[index]), cursor=index + 1)
