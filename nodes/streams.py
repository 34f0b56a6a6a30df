"""Stream ports: ``Stream[T]`` produced and consumed chunk by chunk (DESIGN 3.14).

An output port typed ``Stream[T]`` is filled by a ``run`` that is a generator
(sync or async) yielding ``Outputs`` objects, each carrying one ``T`` chunk on
each stream port (other ports are set on the last yield). An input port typed
``Stream[T]`` receives an iterator of ``T`` matching ``run`` (a sync iterator
for a sync ``run``, an async one for an ``async`` one). An input typed ``T``
fed by a stream receives the accumulated value: ``str`` chunks concatenated,
other chunks as a list.

At run time ``Stream[T]`` is ``Annotated[Any, StreamOf(T)]``: pydantic takes a
chunk (on an output) or an iterator (on an input) and the runner checks each
chunk against ``T``. A type checker sees ``T | Iterator[T] | AsyncIterator[T]``.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar, Union

T = TypeVar("T")


@dataclass(frozen=True)
class StreamOf:
    """The metadata marking a port as a stream of ``item`` chunks."""

    item: Any


if TYPE_CHECKING:
    Stream: TypeAlias = Union[T, Iterator[T], AsyncIterator[T]]  # noqa: UP007
else:

    class Stream:
        """``Stream[T]``: a port carrying ``T`` chunks one by one."""

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[Any, StreamOf(item)]


def stream_item(metadata: typing.Iterable[Any]) -> StreamOf | None:
    """The :class:`StreamOf` marker among a field's metadata, if any."""
    return next((m for m in metadata if isinstance(m, StreamOf)), None)


def accumulate(chunks: list[Any]) -> Any:
    """The value a stream's chunks add up to: ``str`` chunks joined, else the list."""
    if chunks and all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    return list(chunks)
