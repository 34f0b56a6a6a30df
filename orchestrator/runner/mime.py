"""The run-time MIME check of artifacts (DESIGN section 6).

Validation compares the MIME patterns ports declare across each edge, but
what an artifact really is shows only when a run holds it: a ``ReadFile`` of
``*/*`` may read a PNG into a port that accepts ``text/*``. The runner checks
every artifact a run receives against its input port, and every artifact a
run returns against the output port's promise; a mismatch fails the run, not
retryable, naming the port, the expected and the actual type.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from nodes.artifacts import Artifact, mime_matches
from nodes.base import Node
from nodes.errors import FatalNodeError
from nodes.introspect import PortSpec, input_ports, output_ports


class ArtifactTypeError(FatalNodeError):
    """An artifact's MIME type is not one its port declares (retrying cannot help)."""


def check_inputs(node: Node, node_id: str, inputs: BaseModel) -> None:
    """Fail when an artifact input is not of a type its port accepts.

    Raises:
        ArtifactTypeError: naming the port, the accepted and the actual type.
    """
    _check(input_ports(type(node)), inputs, f"node {node_id!r} ({node.type_name}) input", "accepts")


def check_outputs(node: Node, node_id: str, outputs: BaseModel) -> None:
    """Fail when an artifact output is not of a type its port promises.

    Raises:
        ArtifactTypeError: naming the port, the promised and the actual type.
    """
    where = f"node {node_id!r} ({node.type_name}) output"
    _check(output_ports(type(node)), outputs, where, "promises")


def _check(ports: Mapping[str, PortSpec], values: BaseModel, where: str, verb: str) -> None:
    for port in ports.values():
        patterns = port.mime
        if not patterns:
            continue
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
