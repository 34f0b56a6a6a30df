"""How large a workflow, and any JSON value Segue takes in, may be.

Every limit is a named constant here, so the loader, the validator and the
job-input checks refuse the same things with the same words. A value over a
limit is refused with a message naming the limit, never with a traceback:
the limits are what keeps a hostile or broken file from exhausting the
parser's recursion, Python's integer conversion or the store.

| limit | value | why |
| --- | --- | --- |
| :data:`MAX_FILE_BYTES` | 5 MiB | a workflow file is read whole before parsing |
| :data:`MAX_NODES` | 10,000 | nodes in one workflow (each sub-workflow counts apart) |
| :data:`MAX_EDGES` | 100,000 | edges in one workflow |
| :data:`MAX_GROUP_DEPTH` | 8 | sub-workflows (``Group``) inside sub-workflows |
| :data:`MAX_NESTING_DEPTH` | 100 | lists and mappings inside each other, in a file or a value |
| :data:`MAX_INT_DIGITS` | 4,300 | digits of one integer (Python's own conversion limit) |

Numbers must also be finite: JSON has no NaN or Infinity, so neither a
workflow nor a job input may hold one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Largest workflow file read, in bytes."""
MAX_NODES = 10_000
"""Most nodes in one workflow; a sub-workflow's nodes count against its own limit."""
MAX_EDGES = 100_000
"""Most edges in one workflow."""
MAX_GROUP_DEPTH = 8
"""Deepest nesting of sub-workflows (a ``Group`` inside a ``Group``'s workflow …)."""
MAX_NESTING_DEPTH = 100
"""Deepest nesting of lists and mappings: a whole workflow file, or one job input.

Each level of ``Group`` takes four (workflow, nodes, node, config), so eight
levels of groups leave room for deep values in their configs.
"""
MAX_INT_DIGITS = 4_300
"""Most decimal digits of one integer: Python's default conversion limit, so that
every integer accepted can be written back as JSON."""

_INT_BOUND = 10**MAX_INT_DIGITS
_PLAIN = (str, bool, type(None))

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class LongInteger:
    """An integer literal with more than :data:`MAX_INT_DIGITS` digits, left unconverted.

    The parsers produce it instead of converting the literal (which Python
    refuses, or which would take quadratic time); :func:`find_problem` reports it.
    """

    digits: int


def int_literal(text: str) -> int | LongInteger:
    """``json.loads``' ``parse_int``: the integer, or a :class:`LongInteger` when too long."""
    digits = len(text) - (text[:1] in "+-")
    return LongInteger(digits) if digits > MAX_INT_DIGITS else int(text)


class Problem(NamedTuple):
    """A value over a limit: where (a key path) and what."""

    path: KeyPath
    message: str

    def at(self, root: str = "") -> str:
        """The message prefixed by the rendered path (``root`` names the top level)."""
        where = render_path(self.path, root)
        return f"{where}: {self.message}" if where else self.message


_Link = tuple[str | int, Any]  # (key, parent link): a path built only when needed


def find_problem(value: Any, max_depth: int = MAX_NESTING_DEPTH) -> Problem | None:
    """The first value over a limit in ``value`` (nested lists and dicts), or ``None``.

    Walks without recursion, so any depth is safe to inspect. Reports nesting
    deeper than ``max_depth``, integers over :data:`MAX_INT_DIGITS` digits
    (:class:`LongInteger` included) and numbers that are not finite.
    """
    if not isinstance(value, dict | list):
        message = _scalar_problem(value)
        return None if message is None else Problem((), message)
    stack: list[tuple[Any, int, _Link | None]] = [(value, 1, None)]
    while stack:
        container, depth, link = stack.pop()
        if depth > max_depth:
            return Problem(_path(link), f"nests deeper than the limit of {max_depth} levels")
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in items:
            if isinstance(child, _PLAIN):
                continue
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (key, link)))
                continue
            message = _scalar_problem(child)
            if message is not None:
                return Problem(_path((key, link)), message)
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, LongInteger):
        return f"an integer of {value.digits:,} digits, over the limit of {MAX_INT_DIGITS:,} digits"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT_BOUND:
        digits = int(abs(value).bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits:,} digits, over the limit of {MAX_INT_DIGITS:,} digits"
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"the number {value} is not finite; JSON numbers must be finite "
            "(no NaN or Infinity, nothing beyond ±1.8e308)"
        )
    return None


def _path(link: _Link | None) -> KeyPath:
    keys: list[str | int] = []
    while link is not None:
        key, link = link
        keys.append(key)
    return tuple(reversed(keys))


def render_path(path: KeyPath, root: str = "") -> str:
    """``("nodes", 3, "config", "op")`` as ``nodes[3].config.op``, shortened past 120 chars."""
    text = root
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text if len(text) <= 120 else f"{text[:80]}…{text[-36:]}"
