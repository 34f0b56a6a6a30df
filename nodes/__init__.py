"""Segue's node SDK and built-in node library.

Subclass :class:`Node`, :class:`Sink` or :class:`Producer`, declare ``Config``,
``Inputs`` and ``Outputs`` as pydantic models, implement ``run`` (or
``produce``), and register the class in a :class:`NodeRegistry` (or publish it
under the ``segue.nodes`` entry-point group).
"""

from nodes.artifacts import (
    Artifact,
    ArtifactStore,
    LocalArtifactStore,
    MemoryArtifactStore,
    Mime,
)
from nodes.base import (
    EXHAUSTED,
    Exhausted,
    Node,
    NodeConfig,
    NodeKind,
    Ports,
    Produced,
    Producer,
    Resources,
    Role,
    Sink,
)
from nodes.context import RunContext, run_id
from nodes.errors import (
    ArtifactError,
    DuplicateNodeTypeError,
    FatalNodeError,
    NodeDefinitionError,
    NodeError,
    RegistryError,
    SegueError,
    UnknownNodeTypeError,
)
from nodes.ids import RunId
from nodes.introspect import PortSpec, describe, input_ports, output_ports
from nodes.library import builtin_registry, default_registry
from nodes.registry import ENTRY_POINT_GROUP, NodeRegistry
from nodes.streams import Stream

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXHAUSTED",
    "Artifact",
    "ArtifactError",
    "ArtifactStore",
    "DuplicateNodeTypeError",
    "Exhausted",
    "FatalNodeError",
    "LocalArtifactStore",
    "MemoryArtifactStore",
    "Mime",
    "Node",
    "NodeConfig",
    "NodeDefinitionError",
    "NodeError",
    "NodeKind",
    "NodeRegistry",
    "PortSpec",
    "Ports",
    "Produced",
    "Producer",
    "RegistryError",
    "Resources",
    "Role",
    "RunContext",
    "RunId",
    "SegueError",
    "Sink",
    "Stream",
    "UnknownNodeTypeError",
    "builtin_registry",
    "default_registry",
    "describe",
    "input_ports",
    "output_ports",
    "run_id",
]
