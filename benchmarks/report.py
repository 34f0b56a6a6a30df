"""How the benchmarks print what they measured: aligned tables with verdicts,
and the one message for services that are not there.

Imported beside the benchmark scripts (``from report import ...``), as they
import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        title: Its header.
        value: The row's key, or a function of the row.
        fmt: A format spec for the value (``","``, ``".2f"``, ``".1%"``); None shows ``-``.
        align: ``>`` (numbers) or ``<`` (names).
    """

    title: str
    value: str | Callable[[Row], Any]
    fmt: str = ""
    align: str = ">"

    def text(self, row: Row) -> str:
        """The cell of ``row``."""
        value = row.get(self.value) if isinstance(self.value, str) else self.value(row)
        return "-" if value is None else format(value, self.fmt)


def table(columns: Sequence[Column], rows: Iterable[Row]) -> str:
    """``rows`` under a header, each column as wide as its widest cell."""
    cells = [[column.text(row) for column in columns] for row in rows]
    widths = [
        max([len(column.title), *(len(line[i]) for line in cells)])
        for i, column in enumerate(columns)
    ]

    def line(texts: Sequence[str]) -> str:
        parts = [
            format(text, f"{column.align}{width}")
            for text, column, width in zip(texts, columns, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line([column.title for column in columns]), *map(line, cells)])


def verdict(passed: bool | None) -> str:
    """``PASS`` or ``MISS`` against a target; ``-`` where there is none."""
    return "-" if passed is None else ("PASS" if passed else "MISS")


def services_missing(benchmark: str, error: BaseException) -> str:
    """What a benchmark that needs PostgreSQL and Redis says when they are not there."""
    return (
        f"{benchmark} needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on"
        f" 127.0.0.1:6379: {error}; start them with scripts/ensure-services.sh"
    )
