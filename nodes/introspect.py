"""Reading a node type's declared ports and configuration.

The validator, the planner and ``segue nodes types`` all see a node type
through these functions, so what a port is has one definition.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from nodes.artifacts import Mime
from nodes.base import Node, Ports
from nodes.streams import stream_item


@dataclass(frozen=True)
class PortSpec:
    """One declared input or output port.

    Attributes:
        name: The port name (the pydantic field name).
        annotation: The port's type, without ``Annotated`` metadata.
        required: Whether an input must be fed by an edge.
        default: The default of an optional input (``None`` when required).
        mime: MIME patterns of an artifact port, or ``None``.
        description: The field's description, if any.
        stream: Whether the port is ``Stream[annotation]`` (``annotation`` is
            then the chunk type).
    """

    name: str
    annotation: Any
    required: bool
    default: Any
    mime: tuple[str, ...] | None
    description: str | None
    stream: bool = False

    @property
    def type_label(self) -> str:
        """A short human-readable name of the port type."""
        label = type_label(self.annotation)
        if self.stream:
            label = f"Stream[{label}]"
        return f"{label}[{', '.join(self.mime)}]" if self.mime else label


def _port(name: str, field: FieldInfo) -> PortSpec:
    mime = next((m.patterns for m in field.metadata if isinstance(m, Mime)), None)
    marker = stream_item(field.metadata)
    required = field.is_required()
    default: Any = None
    if not required:
        default = field.get_default(call_default_factory=True)
        if default is PydanticUndefined:  # pragma: no cover - pydantic guards this
            default = None
    return PortSpec(
        name=name,
        annotation=marker.item
        if marker is not None
        else field.annotation
        if field.annotation is not None
        else Any,
        required=required,
        default=default,
        mime=mime,
        description=field.description,
        stream=marker is not None,
    )


@functools.cache
def _ports(model: type[Ports]) -> Mapping[str, PortSpec]:
    return types.MappingProxyType(
        {name: _port(name, field) for name, field in model.model_fields.items()}
    )


def input_ports(node_type: type[Node]) -> Mapping[str, PortSpec]:
    """The input ports of a node type, in declaration order."""
    return _ports(node_type.Inputs)


def output_ports(node_type: type[Node]) -> Mapping[str, PortSpec]:
    """The output ports of a node type, in declaration order."""
    return _ports(node_type.Outputs)


def stream_ports(ports: Mapping[str, PortSpec]) -> tuple[str, ...]:
    """The names of the ``Stream[T]`` ports among ``ports``."""
    return tuple(name for name, port in ports.items() if port.stream)


def type_label(annotation: Any) -> str:
    """Render a type annotation the way a user wrote it (``list[int]``, ``int | float``)."""
    if annotation is Any:
        return "Any"
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_label(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_label(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(annotation)) + "]"
    if origin is not None:
        args = typing.get_args(annotation)
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_label(a) for a in args)}]" if args else name
    return getattr(annotation, "__name__", str(annotation))


def _ports_json(ports: Mapping[str, PortSpec], with_defaults: bool) -> list[dict[str, Any]]:
    rows = []
    for port in ports.values():
        row: dict[str, Any] = {"name": port.name, "type": port.type_label}
        if with_defaults:
            row["required"] = port.required
            if not port.required:
                row["default"] = port.default
        if port.mime:
            row["mime"] = list(port.mime)
        if port.description:
            row["description"] = port.description
        rows.append(row)
    return rows


def describe(node_type: type[Node]) -> dict[str, Any]:
    """A JSON description of a node type: kind, ports, config schema, resources."""
    doc = (node_type.__doc__ or "").strip().splitlines()
    return {
        "name": node_type.type_name,
        "version": node_type.version,
        "kind": node_type.kind.value,
        "blocking": node_type.blocking,
        "cacheable": node_type.cacheable,
        "resources": {"gpu": node_type.resources.gpu, "vram_mb": node_type.resources.vram_mb},
        "summary": doc[0] if doc else "",
        "inputs": _ports_json(input_ports(node_type), with_defaults=True),
        "outputs": _ports_json(output_ports(node_type), with_defaults=False),
        "config_schema": node_type.Config.model_json_schema(),
    }
