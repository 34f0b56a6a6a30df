"""Nodes that compute a value from their inputs: arithmetic, text, delays, test faults."""

from __future__ import annotations

import math
import operator
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, JsonValue

from nodes.base import Node, NodeConfig, Ports
from nodes.context import RunContext
from nodes.errors import FatalNodeError, NodeError

Number = int | float
"""A JSON number; the union keeps integers integers (``2 + 3`` is ``5``, not ``5.0``)."""

MathOp = Literal["add", "sub", "mul", "div", "pow", "mod", "min", "max"]

_OPERATIONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "mod": operator.mod,
    "min": min,
    "max": max,
}

# Python refuses to print integers longer than this; a result past it could
# not travel as JSON, so ``pow`` refuses it before spending the time.
_MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


class Math(Node):
    """Combine two numbers: ``a <op> b``.

    ``div`` is true division; ``mod`` follows Python's sign rules; ``min`` and
    ``max`` pick one input. Integers stay integers where the operation allows.
    """

    class Config(NodeConfig):
        op: MathOp = Field(description="The operation: add, sub, mul, div, pow, mod, min or max")

    class Inputs(Ports):
        a: Number = Field(description="Left operand")
        b: Number = Field(description="Right operand")

    class Outputs(Ports):
        result: Number = Field(description="a <op> b")

    inline = True
    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        op, a, b = self.config.op, inputs.a, inputs.b
        where = f"node {ctx.node_id!r} (Math {op})"
        if op in ("div", "mod") and b == 0:
            raise FatalNodeError(f"{where}: input 'b' is 0; cannot {op} by zero")
        if op == "pow":
            _check_power(a, b, where)
        try:
            result = _OPERATIONS[op](a, b)
        except (ArithmeticError, ValueError) as exc:
            raise FatalNodeError(f"{where}: cannot compute {a!r} {op} {b!r}: {exc}") from exc
        if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
            raise FatalNodeError(f"{where}: {a!r} {op} {b!r} is not a finite real number")
        return self.Outputs(result=result)


def _check_power(a: Number, b: Number, where: str) -> None:
    if a == 0 and b < 0:
        raise FatalNodeError(f"{where}: input 'a' is 0 and 'b' is negative; cannot divide by zero")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        digits = b * math.log10(abs(a))
        if digits > _MAX_INT_DIGITS:
            raise FatalNodeError(
                f"{where}: {a} ** {b} would have about {digits:.0f} digits, "
                f"more than the {_MAX_INT_DIGITS} a JSON value may hold"
            )


_PRIVATE_NAME = re.compile(r"(?:^|[.\[])_")
_NUMBER = re.compile(r"\d+")
_MAX_WIDTH = 10_000


class _SafeFormatter(string.Formatter):
    """``str.format`` that refuses private names and giant widths.

    ``{value.__class__}`` or ``{value[_x]}`` would let a template walk into
    Python internals, and ``{value:999999999}`` would fill memory.
    """

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if _PRIVATE_NAME.search(field_name):
            raise ValueError(f"field {{{field_name}}} names a private attribute or key")
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(n) > _MAX_WIDTH for n in _NUMBER.findall(format_spec)):
            raise ValueError(f"format spec {format_spec!r} asks for more than {_MAX_WIDTH} chars")
        return super().format_field(value, format_spec)


_FORMATTER = _SafeFormatter()
_CONVERSIONS = (None, "r", "s", "a")


def check_template(template: str) -> str:
    """``template`` when it can render ``value``; else a ``ValueError`` saying why.

    Refused before anything runs, since each would fail every run: unbalanced
    braces, a field other than ``{value…}``, ``{0…}`` or one ``{}``, a private
    name, an unknown ``!`` conversion.
    """
    try:
        fields = list(_fields(template))
    except ValueError as exc:
        raise ValueError(f"{exc}; write {{{{ or }}}} for a literal brace") from None
    automatic = 0
    for name, conversion in fields:
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in ("", "0", "value"):
            raise ValueError(
                f"field {{{name}}} names {root!r}; a template refers to its input "
                "as {value} (or {0}, or one {})"
            )
        if _PRIVATE_NAME.search(name):
            raise ValueError(f"field {{{name}}} names a private attribute or key")
        if conversion not in _CONVERSIONS:
            raise ValueError(f"field {{{name}!{conversion}}}: the conversion must be !r, !s or !a")
        automatic += root == ""
    if automatic > 1 or (automatic and any(n.startswith("0") for n, _ in fields)):
        raise ValueError("write {value} for the input: {} stands for it only once, alone")
    return template


def _fields(template: str) -> Iterator[tuple[str, str | None]]:
    for _, name, spec, conversion in _FORMATTER.parse(template):
        if name is not None:
            yield name, conversion
        if spec:
            yield from _fields(spec)


class Format(Node):
    """Render a ``str.format`` template with the input as ``value``.

    ``{value}``, ``{value[key]}``, ``{value[0]}``, ``{value.attr}`` and format
    specs such as ``{value:.2f}`` work; ``{}`` and ``{0}`` are ``value`` too.
    Attribute and key names starting with ``_`` are refused.
    """

    cacheable = True
    inline = True

    class Config(NodeConfig):
        template: str = Field(description="A str.format template, e.g. 'n={value:.2f}'")

    class Inputs(Ports):
        value: Any = Field(description="The value the template refers to as {value}")

    class Outputs(Ports):
        text: str = Field(description="The rendered text")

    config: Config

    @classmethod
    def config_problems(cls, config: Any) -> list[tuple[str, str]]:
        """A template that cannot render (see :func:`check_template`)."""
        try:
            check_template(config.template)
        except ValueError as exc:
            return [("template", f"{config.template!r} cannot render: {exc}")]
        return []

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        template = self.config.template
        try:
            text = _FORMATTER.format(template, inputs.value, value=inputs.value)
        except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
            raise FatalNodeError(
                f"node {ctx.node_id!r} cannot render template {template!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return self.Outputs(text=text)


class Sleep(Node):
    """Wait ``seconds``, then pass the value through."""

    class Config(NodeConfig):
        seconds: float = Field(ge=0, description="How long to wait")

    class Inputs(Ports):
        value: Any = Field(default=None, description="The value to pass through")

    class Outputs(Ports):
        value: Any = Field(description="The same value, after the wait")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        time.sleep(self.config.seconds)
        return self.Outputs(value=inputs.value)


class Flaky(Node):
    """Pass the value through, failing on purpose: a node for testing retries.

    The run raises a retryable :class:`~nodes.errors.NodeError` while its
    attempt is at most ``fail_times``, and on every attempt when the value is
    one of ``fail_on``.
    """

    class Config(NodeConfig):
        fail_times: int = Field(default=0, ge=0, description="Attempts that fail before one passes")
        fail_on: list[JsonValue] = Field(
            default_factory=list, description="Values that always fail"
        )

    class Inputs(Ports):
        value: Any = Field(default=None, description="The value to pass through")

    class Outputs(Ports):
        value: Any = Field(description="The same value")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        attempt, value = ctx.attempt, inputs.value
        if attempt <= self.config.fail_times:
            raise NodeError(
                f"node {ctx.node_id!r} (Flaky) fails attempt {attempt} of the first "
                f"{self.config.fail_times} on purpose (value {value!r})"
            )
        if value in self.config.fail_on:
            ctx.logger.warning("value %r is listed in fail_on: this run fails", value)
            raise NodeError(
                f"node {ctx.node_id!r} (Flaky) fails on purpose for value {value!r}, "
                f"listed in fail_on (attempt {attempt})"
            )
        return self.Outputs(value=value)
