"""Reading workflow files while remembering where each value was written.

The parsed data is paired with a :class:`SourceMap` from key paths such as
``("nodes", 3, "config", "op")`` to 1-based file lines, so that every
validation message can point at its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import Issue, WorkflowParseError
from orchestrator.model.limits import (
    MAX_EDGES,
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
    MAX_NESTING_DEPTH,
    MAX_NODES,
    LongInteger,
    int_literal,
    render_path,
)

Path_ = tuple[str | int, ...]

DEFAULT_MAX_FILE_BYTES = MAX_FILE_BYTES

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader, with integers over :data:`MAX_INT_DIGITS` digits left unconverted."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | LongInteger:
    digits = sum(char.isalnum() for char in str(node.value))
    if digits > MAX_INT_DIGITS:
        return LongInteger(digits)
    value: int = loader.construct_yaml_int(node)
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


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

    A regular file is refused by its size before it is read; a pipe or device
    (``/dev/stdin``) is read up to the limit and refused past it.

    Raises:
        WorkflowParseError: the file is missing, unreadable, too large or not UTF-8.
    """
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise _too_large(f"{size:,} bytes", max_bytes, name)
        with Path(path).open("rb") as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large("larger", max_bytes, name)
        return data.decode("utf-8")
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
    except OSError as exc:
        raise WorkflowParseError(
            f"cannot read the workflow file: {exc.strerror or exc}", source=name
        ) from None


def _too_large(size: str, max_bytes: int, source: str) -> WorkflowParseError:
    return WorkflowParseError(
        f"workflow file is {size}, over the limit of {max_bytes:,} bytes", source=source
    )


def parse(text: str, source: str | None = None, fmt: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML or JSON text into plain data and its source map.

    ``fmt`` is ``"json"`` or ``"yaml"``; by default a ``.json`` source is JSON
    and anything else YAML (which also reads JSON). Integers over
    :data:`~orchestrator.model.limits.MAX_INT_DIGITS` digits come back as
    :class:`~orchestrator.model.limits.LongInteger`, for the model to refuse
    with their location. A file with more nodes or edges than the limits is
    refused before its line map is built, the slow part of loading a large file.

    Raises:
        WorkflowParseError: with the line and column of the syntax error, or
            naming the limit a file exceeds.
    """
    if fmt is None:
        fmt = "json" if source and source.lower().endswith(".json") else "yaml"
    if fmt == "json":
        try:
            data = json.loads(text, parse_int=int_literal)
        except json.JSONDecodeError as exc:
            raise WorkflowParseError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                source=source,
                line=exc.lineno,
            ) from None
        except RecursionError:
            raise _too_deep(source, _deep_line(text)) from None
        _check_counts(data, source, lambda key: _json_key_line(text, key))
        try:
            root = yaml.compose(text, Loader=_Loader)
        except (yaml.YAMLError, RecursionError):
            root = None  # valid JSON that YAML 1.1 reads differently: no line numbers
        return data, (SourceMap(source=source) if root is None else _map(root, text, source))
    try:
        _scan_yaml(text, source)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:  # the pure-Python loader, without libyaml's own depth limit
        raise _too_deep(source, None) from None
    finally:
        loader.dispose()
    if root is None:
        return None, SourceMap(source=source)
    return data, _map(root, text, source)


def _too_deep(source: str | None, line: int | None) -> WorkflowParseError:
    return WorkflowParseError(
        f"the file nests lists and mappings deeper than the limit of {MAX_NESTING_DEPTH} levels",
        source=source,
        line=line,
    )


def _deep_line(text: str) -> int | None:
    """The line where JSON text first nests deeper than the limit (strings skipped)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _json_key_line(text: str, key: str) -> int | None:
    at = text.find(f'"{key}"')
    return None if at < 0 else text.count("\n", 0, at) + 1


def _scan_yaml(text: str, source: str | None) -> None:
    """Refuse YAML nested deeper than the limit, or with more nodes or edges than the
    limits, from the parser's events: ten times quicker than building the node tree
    (which resolves every scalar's type), and it stops at the first fault."""
    stack: list[bool] = []  # per open collection: is it a mapping
    expect_key = True  # in the top-level mapping, the next node is a key
    key: str | None = None
    counted: str | None = None  # "nodes" or "edges": the top-level list being counted
    count = 0
    for event in yaml.parse(text, Loader=_Loader):
        is_start = isinstance(event, yaml.CollectionStartEvent)
        if is_start or isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            if len(stack) == 2 and counted is not None:
                count += 1
                if count > _COUNT_LIMITS[counted]:
                    raise _too_many(counted, None, source, _line(event))
            if stack == [True]:  # a key or a value of the top-level mapping
                if expect_key and isinstance(event, yaml.ScalarEvent):
                    key = event.value
                elif not expect_key and isinstance(event, yaml.SequenceStartEvent):
                    counted, count = (key, 0) if key in _COUNT_LIMITS else (None, 0)
                if not is_start:
                    expect_key = not expect_key
        if is_start:
            stack.append(isinstance(event, yaml.MappingStartEvent))
            if len(stack) > MAX_NESTING_DEPTH:
                raise _too_deep(source, _line(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            if stack == [True]:
                counted = None
                expect_key = not expect_key


_COUNT_LIMITS = {"nodes": MAX_NODES, "edges": MAX_EDGES}


def _line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return None if mark is None else mark.line + 1


def _too_many(
    key: str, count: int | None, source: str | None, line: int | None
) -> WorkflowParseError:
    limit = _COUNT_LIMITS[key]
    found = f"more than {limit:,} {key}" if count is None else f"{count:,} {key}"
    return WorkflowParseError(
        f"workflow has {found}, over the limit of {limit:,} {key} in one workflow",
        source=source,
        line=line,
    )


def _check_counts(data: Any, source: str | None, line_of: Callable[[str], int | None]) -> None:
    """Refuse a workflow with more nodes or edges than the limits, before more work."""
    if not isinstance(data, dict):
        return
    for key, limit in _COUNT_LIMITS.items():
        items = data.get(key)
        if isinstance(items, list) and len(items) > limit:
            raise _too_many(key, len(items), source, line_of(key))


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
                            message=f"duplicate key {name!r} in "
                            f"{render_path(path) or 'the top level'}; "
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
