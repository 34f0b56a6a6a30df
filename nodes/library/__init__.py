"""Segue's built-in node types (DESIGN section 6) and the registries holding them.

Use :func:`builtin_registry` for a fresh registry with only the built-ins, or
:func:`default_registry` for the built-ins plus every node type installed
packages publish under the ``segue.nodes`` entry-point group.
"""

from __future__ import annotations

import functools

from nodes.base import Node
from nodes.library.comment import Comment
from nodes.library.convergence import Compare, Count
from nodes.library.files import ReadFile, ReadText, WriteFile, WriteText
from nodes.library.group import Group
from nodes.library.io import Constant, Input, Output, Preview
from nodes.library.producers import Items, Range
from nodes.library.queues import QueueReader, QueueWriter
from nodes.library.sinks import JsonlSink
from nodes.library.streaming import FlakyStream, Join, Take, Tokens
from nodes.library.torch_embed import TorchEmbed, TorchRandomBatch
from nodes.library.torch_nodes import TorchMatmul
from nodes.library.transform import Flaky, Format, Math, Sleep
from nodes.registry import NodeRegistry

BUILTIN_TYPES: tuple[type[Node], ...] = (
    Input,
    Output,
    Constant,
    Preview,
    Range,
    Items,
    Math,
    Format,
    Sleep,
    Flaky,
    JsonlSink,
    QueueWriter,
    QueueReader,
    Group,
    TorchMatmul,
    TorchRandomBatch,
    TorchEmbed,
    ReadFile,
    WriteFile,
    ReadText,
    WriteText,
    Count,
    Compare,
    Tokens,
    Join,
    Comment,
    Take,
    FlakyStream,
)
"""Every built-in node type, in the order DESIGN section 6 lists them."""


def builtin_registry() -> NodeRegistry:
    """A new registry holding exactly the built-in node types."""
    return NodeRegistry(BUILTIN_TYPES)


@functools.cache
def default_registry() -> NodeRegistry:
    """The built-ins plus the node types of installed ``segue.nodes`` entry points.

    Built once per process and shared: call ``.copy()`` before registering
    anything into it.

    Raises:
        DuplicateNodeTypeError: when a package claims a built-in's name.
        NodeDefinitionError: naming an entry point that published a bad object.
    """
    registry = builtin_registry()
    registry.load_entry_points()
    return registry


__all__ = [
    "BUILTIN_TYPES",
    "Comment",
    "Compare",
    "Constant",
    "Count",
    "Flaky",
    "Format",
    "Group",
    "Input",
    "Items",
    "JsonlSink",
    "Math",
    "Output",
    "Preview",
    "QueueReader",
    "QueueWriter",
    "Range",
    "ReadFile",
    "ReadText",
    "Sleep",
    "TorchEmbed",
    "TorchMatmul",
    "TorchRandomBatch",
    "WriteFile",
    "WriteText",
    "builtin_registry",
    "default_registry",
]
