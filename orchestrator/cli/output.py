"""How CLI commands print: rich on a terminal, exact JSON for scripts."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from orchestrator.errors import Issue

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Write ``data`` to stdout as one JSON document, nothing else.

    Always valid JSON: a number that is not finite (a NaN kept by an old job,
    say), which JSON cannot hold, is written as a string (``"nan"``).
    """
    try:
        text = json.dumps(data, indent=2, default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(data), indent=2, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def print_issues(issues: list[Issue], console: Console = out) -> None:
    """Print located issues, one per line, as ``file:line: message``."""
    for issue in issues:
        where = ":".join(str(p) for p in (issue.source, issue.line) if p is not None)
        prefix = f"[bold]{where}[/bold]: " if where else ""
        console.print(f"[red]✗[/red] {prefix}{_escape(issue.message)}")


def plural(count: int, noun: str) -> str:
    """``1 node``, ``0 nodes``, ``2 nodes``: a count and its noun, pluralised with an ``s``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``message`` to stderr (no traceback) and exit with ``code``."""
    err.print(f"[red]error:[/red] {_escape(message)}")
    raise typer.Exit(code)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
