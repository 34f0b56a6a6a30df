"""The node type registry: the only way a workflow reaches code.

A workflow names node types; the registry maps those names to classes that
were registered explicitly (the built-in library, a caller, or an installed
package's ``segue.nodes`` entry point). Nothing a workflow says is imported.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from nodes.base import Node, check_node_class
from nodes.errors import DuplicateNodeTypeError, NodeDefinitionError, UnknownNodeTypeError

ENTRY_POINT_GROUP = "segue.nodes"

N = TypeVar("N", bound=type[Node])


class NodeRegistry:
    """Named node types.

    Registering a second class under a taken name raises; registering the
    same class again is a no-op; looking up an unknown name raises with the
    closest registered names.
    """

    def __init__(self, types: Iterable[type[Node]] = ()) -> None:
        self._types: dict[str, type[Node]] = {}
        for node_type in types:
            self.register(node_type)

    def register(self, node_type: N) -> N:
        """Register a node type under its ``type_name``; usable as a decorator."""
        cls = check_node_class(node_type)
        name = cls.type_name
        current = self._types.get(name)
        if current is not None and current is not cls:
            raise DuplicateNodeTypeError(
                f"node type {name!r} is already registered by "
                f"{current.__module__}.{current.__qualname__}; "
                f"{cls.__module__}.{cls.__qualname__} needs another type_name"
            )
        self._types[name] = cls
        return node_type

    def get(self, name: str) -> type[Node]:
        """Return the node type registered as ``name``.

        Raises:
            UnknownNodeTypeError: with close matches as suggestions.
        """
        try:
            return self._types[name]
        except KeyError:
            raise UnknownNodeTypeError(name, self.suggest(name)) from None

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name``, best first."""
        lowered = {n.lower(): n for n in self._types}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
        return [lowered[c] for c in close]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[type[Node]]:
        return iter(sorted(self._types.values(), key=lambda cls: cls.type_name))

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._types)

    def copy(self) -> NodeRegistry:
        """An independent registry with the same types."""
        clone = NodeRegistry()
        clone._types = dict(self._types)
        return clone

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register node types that installed packages publish under ``group``.

        An entry point may name a node class, an iterable of node classes, or a
        callable that takes this registry. Returns the entry point names loaded.

        Raises:
            NodeDefinitionError: naming the entry point that published a bad object.
        """
        loaded = []
        for entry in importlib.metadata.entry_points(group=group):
            target = entry.load()
            try:
                self._register_published(target)
            except NodeDefinitionError as exc:
                raise NodeDefinitionError(
                    f"entry point {entry.name!r} ({entry.value}) in group {group!r}: {exc}"
                ) from exc
            loaded.append(entry.name)
        return loaded

    def _register_published(self, target: Any) -> None:
        if isinstance(target, type):
            self.register(target)
        elif isinstance(target, Iterable):
            for item in target:
                self.register(item)
        elif callable(target):
            register: Callable[[NodeRegistry], object] = target
            register(self)
        else:
            raise NodeDefinitionError(f"{target!r} is neither a node class, a list nor a callable")
