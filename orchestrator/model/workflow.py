"""The :class:`Workflow` model: load, build, dump."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from orchestrator.errors import Issue, WorkflowInvalid, WorkflowParseError
from orchestrator.model.limits import find_problem
from orchestrator.model.source import DEFAULT_MAX_FILE_BYTES, SourceMap, parse, read_text
from orchestrator.model.spec import EdgeSpec, LoopPolicy, NodeSpec, _Spec


class Workflow(_Spec):
    """A named graph of nodes and edges, with optional per-loop policies.

    Load one with :meth:`load` (a YAML or JSON file), :meth:`loads` (text),
    :meth:`from_dict`, or build one with :class:`~orchestrator.WorkflowBuilder`.
    Dumping with :meth:`to_dict` keeps exactly what was written, so a workflow
    survives a load/dump round trip unchanged.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    nodes: list[NodeSpec] = Field(default_factory=list)
    edges: list[EdgeSpec] = Field(default_factory=list)
    loops: dict[str, LoopPolicy] = Field(default_factory=dict)

    _source: SourceMap = PrivateAttr(default_factory=SourceMap)

    def __eq__(self, other: object) -> bool:
        # Where a workflow was read from is not part of what it is.
        if not isinstance(other, Workflow):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> SourceMap:
        """The file name and line map this workflow was loaded with."""
        return self._source

    @classmethod
    def load(cls, path: str | Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Workflow:
        """Load a workflow from a YAML or JSON file.

        Raises:
            WorkflowParseError: the file is missing, too large or malformed.
            WorkflowInvalid: the data does not have the shape of a workflow.
        """
        text = read_text(path, max_bytes)
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str | None = None, fmt: str | None = None) -> Workflow:
        """Load a workflow from YAML or JSON text (see :meth:`load`)."""
        data, source_map = parse(text, source=source, fmt=fmt)
        return cls.from_dict(data, source_map)

    @classmethod
    def from_dict(cls, data: Any, source: SourceMap | None = None) -> Workflow:
        """Build a workflow from plain data, reporting shape errors located.

        Raises:
            WorkflowParseError: ``data`` is not a mapping, or holds a value over a
                limit of :mod:`orchestrator.model.limits` (nesting, integer
                digits, a number that is not finite), located.
            WorkflowInvalid: one issue per pydantic error, with node, edge and line.
        """
        source = source or SourceMap()
        if not isinstance(data, Mapping):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise WorkflowParseError(
                f"a workflow must be a mapping with name, nodes and edges; this file is {kind}",
                source=source.source,
                line=source.line_for(()),
            )
        problem = find_problem(data)
        if problem is not None:
            raise WorkflowParseError(
                problem.at(), source=source.source, line=source.line_for(problem.path)
            )
        try:
            workflow = cls.model_validate(data)
        except ValidationError as exc:
            issues = [*source.duplicate_keys, *shape_issues(exc, data, source)]
            raise WorkflowInvalid(issues, name=_name_of(data)) from None
        if source.duplicate_keys:
            raise WorkflowInvalid(list(source.duplicate_keys), name=workflow.name)
        workflow._source = source
        return workflow

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data holding exactly what the workflow sets."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def to_json(self, indent: int | None = 2) -> str:
        """The workflow as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_yaml(self) -> str:
        """The workflow as YAML text, keys in model order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def dump(self, path: str | Path) -> None:
        """Write the workflow to ``path`` as JSON (``.json``) or YAML."""
        target = Path(path)
        text = self.to_json() if target.suffix.lower() == ".json" else self.to_yaml()
        target.write_text(text, encoding="utf-8")

    def node(self, node_id: str) -> NodeSpec:
        """The node with ``node_id``.

        Raises:
            KeyError: naming the id.
        """
        for spec in self.nodes:
            if spec.id == node_id:
                return spec
        raise KeyError(f"workflow {self.name!r} has no node {node_id!r}")

    def node_path(self, index: int) -> tuple[str | int, ...]:
        """The source path of the node at ``index``."""
        return ("nodes", index)


def _name_of(data: Mapping[str, Any]) -> str | None:
    name = data.get("name")
    return name if isinstance(name, str) else None


def shape_issues(
    exc: ValidationError,
    data: Mapping[str, Any],
    source: SourceMap,
    prefix: tuple[str | int, ...] = (),
) -> list[Issue]:
    """Turn pydantic errors on workflow data into located issues."""
    issues = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        node, edge = _subject(data, loc)
        where = ".".join(str(p) for p in loc) or "workflow"
        if node is not None:
            where = f"node {node!r}: " + (".".join(str(p) for p in loc[2:]) or "entry")
        elif edge is not None:
            where = f"edge {edge}: " + (".".join(str(p) for p in loc[2:]) or "entry")
        issues.append(
            Issue(
                message=f"{where.rstrip(': ')}: {error['msg']}" + _got(error),
                node=node,
                edge=edge,
                line=source.line_for((*prefix, *loc)),
                source=source.source,
            )
        )
    return issues


def _got(error: Any) -> str:
    if error["type"] in {"missing", "extra_forbidden"}:
        return ""
    value = repr(error.get("input"))
    return f" (got {value[:80]})"


def _subject(data: Mapping[str, Any], loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    if len(loc) < 2 or not isinstance(loc[1], int):
        return None, None
    items = data.get(loc[0])
    if (
        not isinstance(items, list)
        or loc[1] >= len(items)
        or not isinstance(items[loc[1]], Mapping)
    ):
        return None, None
    item = items[loc[1]]
    if loc[0] == "nodes":
        node_id = item.get("id")
        return (node_id if isinstance(node_id, str) else None), None
    if loc[0] == "edges":
        return None, f"{item.get('from')} -> {item.get('to')}"
    return None, None
