"""Reading workflow files while remembering where each value was written.

The parsed data is paired with a :class:`SourceMap` from key paths such as
``("nodes", 3, "config", "op")`` to 1-based file lines, so that every
validation message can point at its line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import Issue, WorkflowParseError

Path_ = tuple[str | int, ...]

DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class SourceMap:
    """Where a loaded workflow came from and the line of each key path."""

    source: str | None = None
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicate_keys: tuple[Issue, ...] = ()

    def line_for(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def read_text(path: str | Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
    """Read a workflow file, refusing one over ``max_bytes``.

    Raises:
        WorkflowParseError: the file is missing, unreadable, too large or not UTF-8.
    """
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise WorkflowParseError(
                f"workflow file is {size:,} bytes, over the limit of {max_bytes:,} bytes",
                source=name,
            )
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowParseError("no such workflow file", source=name) from None
    except IsADirectoryError:
        raise WorkflowParseError("is a directory, not a workflow file", source=name) from None
    except PermissionError:
        raise WorkflowParseError(
            "permission denied reading the workflow file", source=name
        ) from None
    except UnicodeDecodeError as exc:
        raise WorkflowParseError(
            f"workflow file is not UTF-8 text ({exc.reason})", source=name
        ) from None


def parse(text: str, source: str | None = None, fmt: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML or JSON text into plain data and its source map.

    ``fmt`` is ``"json"`` or ``"yaml"``; by default a ``.json`` source is JSON
    and anything else YAML (which also reads JSON).

    Raises:
        WorkflowParseError: with the line and column of the syntax error.
    """
    if fmt is None:
        fmt = "json" if source and source.lower().endswith(".json") else "yaml"
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowParseError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                source=source,
                line=exc.lineno,
            ) from None
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError:
            root = None  # valid JSON that YAML 1.1 reads differently: no line numbers
        return data, (SourceMap(source=source) if root is None else _map(root, text, source))
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()
    if root is None:
        return None, SourceMap(source=source)
    return data, _map(root, text, source)


def _yaml_error(exc: yaml.YAMLError, source: str | None) -> WorkflowParseError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    if mark is None:
        return WorkflowParseError(f"invalid YAML: {text}", source=source)
    return WorkflowParseError(
        f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {text}",
        source=source,
        line=mark.line + 1,
    )


def _map(root: yaml.Node, text: str, source: str | None) -> SourceMap:
    # Without aliases a document holds fewer values than characters; aliases of
    # aliases (a "billion laughs" file) multiply them, so cap the walk, which
    # would otherwise expand them all, as validation would after it.
    budget = 2 * len(text) + 100
    lines: dict[Path_, int] = {}
    duplicates: list[Issue] = []
    for count, (path, node, key_line) in enumerate(_walk(root, ())):
        if count > budget:
            raise WorkflowParseError(
                f"workflow file expands to more than {budget:,} values through YAML "
                "aliases (*name); write the repeated values out instead",
                source=source,
            )
        lines[path] = key_line if key_line is not None else node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, _ in node.value:
                name = str(key.value)
                if name in seen:
                    duplicates.append(
                        Issue(
                            message=f"duplicate key {name!r} in {_render(path)}; "
                            "YAML would silently keep only the last one",
                            line=key.start_mark.line + 1,
                            source=source,
                        )
                    )
                seen.add(name)
    return SourceMap(source=source, lines=lines, duplicate_keys=tuple(duplicates))


def _walk(
    node: yaml.Node, path: Path_, key_line: int | None = None
) -> Iterator[tuple[Path_, yaml.Node, int | None]]:
    stack: list[tuple[yaml.Node, Path_, int | None]] = [(node, path, key_line)]
    while stack:
        current, at, line = stack.pop()
        yield at, current, line
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append((value, (*at, str(key.value)), key.start_mark.line + 1))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, (*at, index), None))


def _render(path: Path_) -> str:
    if not path:
        return "the top level"
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
