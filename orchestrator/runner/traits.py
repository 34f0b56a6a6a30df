"""What the runner needs to know of a node type, found once per type.

Every run asks the same questions of its node type: sync or async, a queue
node, which ports stream, which ports carry MIME-typed artifacts. The answers
are fixed per type, so :func:`traits_of` works them out on the first run and
each later run reads flags, skipping the checks its type has nothing for.
"""

from __future__ import annotations

from typing import NamedTuple

from nodes.base import Node
from orchestrator.runner.mime import artifact_ports
from orchestrator.streams.execute import streams_in, streams_out


class Traits(NamedTuple):
    """The facts of one node type the runner acts on."""

    is_async: bool
    queue: bool
    streams_in: tuple[str, ...]
    streams_out: tuple[str, ...]
    mime_in: bool
    mime_out: bool


_TRAITS: dict[type[Node], Traits] = {}


def traits_of(node_type: type[Node]) -> Traits:
    """The traits of ``node_type`` (worked out once)."""
    found = _TRAITS.get(node_type)
    if found is None:
        found = _TRAITS[node_type] = Traits(
            is_async=node_type.is_async(),
            queue=node_type.role.queue,
            streams_in=streams_in(node_type),
            streams_out=streams_out(node_type),
            mime_in=bool(artifact_ports(node_type, "input")),
            mime_out=bool(artifact_ports(node_type, "output")),
        )
    return found
