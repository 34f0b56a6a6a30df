"""The root of Segue's exception tree.

Every error Segue raises derives from :class:`SegueError`. Each class says
whether the failed operation may be retried as it is (``retryable``), so the
scheduler and the infrastructure wrappers never guess from a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class SegueError(Exception):
    """Base of every Segue error.

    Attributes:
        retryable: True when repeating the same operation may succeed.
    """

    retryable: ClassVar[bool] = False


class RegistryError(SegueError):
    """A node type could not be registered or found."""


class UnknownNodeTypeError(RegistryError, LookupError):
    """A workflow or a caller named a node type that is not registered."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = (
            f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if suggestions else ""
        )
        super().__init__(
            f"unknown node type {name!r}{hint} (`segue nodes types` lists the registered types)"
        )


class DuplicateNodeTypeError(RegistryError):
    """Two different classes claimed the same node type name."""


class NodeDefinitionError(RegistryError):
    """A node class is declared wrongly (bad name, ports or config)."""


class NodeError(SegueError):
    """Raised by a node's ``run`` to fail the run; retried per its policy."""

    retryable = True


class FatalNodeError(NodeError):
    """Raised by a node to fail the run at once, without spending retries."""

    retryable = False


class ArtifactError(SegueError):
    """An artifact could not be stored or read."""
