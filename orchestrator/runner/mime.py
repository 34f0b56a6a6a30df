"""The run-time MIME check of artifacts (DESIGN section 6).

Validation compares the MIME patterns ports declare across each edge, but
what an artifact really is shows only when a run holds it: a ``ReadFile`` of
``*/*`` may read a PNG into a port that accepts ``text/*``. The runner checks
every artifact a run receives against its input port, and every artifact a
run returns against the output port's promise; a mismatch fails the run, not
retryable, naming the port, the expected and the actual type.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from nodes.artifacts import Artifact, mime_matches
from nodes.base import Node
from nodes.errors import FatalNodeError
from nodes.introspect import PortSpec, input_ports, output_ports


class ArtifactTypeError(FatalNodeError):
    """An artifact's MIME type is not one its port declares (retrying cannot help)."""


class _Named(Protocol):
    @property
    def node_id(self) -> str: ...


def check_inputs(node: Node, spec: _Named, inputs: BaseModel) -> None:
    """Fail when an artifact input is not of a type its port accepts.

    Raises:
        ArtifactTypeError: naming the port, the accepted and the actual type.
    """
    ports = _PORTS.get((type(node), "input"))
    if ports is None:
        ports = artifact_ports(type(node), "input")
    if ports:
        _check(ports, inputs, f"node {spec.node_id!r} ({node.type_name}) input", "accepts")


def check_outputs(node: Node, spec: _Named, outputs: BaseModel) -> None:
    """Fail when an artifact output is not of a type its port promises.

    Raises:
        ArtifactTypeError: naming the port, the promised and the actual type.
    """
    ports = _PORTS.get((type(node), "output"))
    if ports is None:
        ports = artifact_ports(type(node), "output")
    if ports:
        _check(ports, outputs, f"node {spec.node_id!r} ({node.type_name}) output", "promises")


_PORTS: dict[tuple[type[Node], str], tuple[PortSpec, ...]] = {}


def artifact_ports(cls: type[Node], side: str) -> tuple[PortSpec, ...]:
    """The ports of one side of a node type that declare MIME types (most have none:
    their runs skip the check). Ports are fixed per type, so they are found once."""
    found = _PORTS.get((cls, side))
    if found is None:
        ports = input_ports(cls) if side == "input" else output_ports(cls)
        found = _PORTS[(cls, side)] = tuple(port for port in ports.values() if port.mime)
    return found


def _check(ports: tuple[PortSpec, ...], values: BaseModel, where: str, verb: str) -> None:
    for port in ports:
        patterns = port.mime or ()
        value = getattr(values, port.name, None)
        if not isinstance(value, Artifact):
            continue
        if any(mime_matches(value.mime_type, pattern) for pattern in patterns):
            continue
        declared = ", ".join(patterns)
        raise ArtifactTypeError(
            f"{where} {port.name!r}: artifact {value.uri} is {value.mime_type}, "
            f"but the port {verb} {declared}"
        )
