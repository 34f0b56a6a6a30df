"""Static compatibility of port types across an edge.

An edge is rejected only when no value of the source port's type could be
accepted by the target port: Python subtyping, the numeric tower
(``bool`` → ``int`` → ``float``), unions, literals and generic containers,
with ``Any`` and JSON values compatible with everything. Pydantic models and
``dict`` are interchangeable, since values cross process boundaries as JSON.
"""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from typing import Any

from pydantic import BaseModel, JsonValue

from nodes.artifacts import mime_compatible

_NUMERIC_WIDENING = {(bool, int), (bool, float), (int, float), (int, complex), (float, complex)}
_UNIONS = (typing.Union, types.UnionType)
_cache: dict[tuple[Any, Any], bool] = {}


def assignable(source: Any, target: Any) -> bool:
    """Whether a value of type ``source`` may flow into a port of type ``target``."""
    key = (source, target)
    try:
        cached = _cache.get(key)
    except TypeError:  # unhashable metadata: check without caching
        return _assignable(source, target)
    if cached is None:
        cached = _cache[key] = _assignable(source, target)
    return cached


def carried(annotation: Any, stream_out: bool, stream_in: bool) -> Any:
    """The type an edge delivers from an output of ``annotation`` (its chunk type
    when ``stream_out``) to an input that is or is not a stream.

    A stream into a non-stream input (or a feedback edge, a queue, an ``Output``)
    delivers the accumulated value: ``str`` chunks joined, other chunks as a list.
    Anything else delivers chunks (a non-stream value is one chunk).
    """
    if stream_out and not stream_in:
        item = _strip(annotation)
        return item if item is str or item is Any else list[annotation]
    return annotation


def mimes_compatible(produced: tuple[str, ...] | None, accepted: tuple[str, ...] | None) -> bool:
    """Whether an artifact port producing ``produced`` may feed one accepting ``accepted``.

    A side that declares no MIME types is checked at run time instead.
    """
    if not produced or not accepted:
        return True
    return mime_compatible(produced, accepted)


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is JsonValue or annotation is object or annotation is None:
        return Any if annotation is not None else type(None)
    return annotation


def _assignable(source: Any, target: Any) -> bool:
    source, target = _strip(source), _strip(target)
    if source is Any or target is Any or source == target:
        return True
    source_origin, target_origin = typing.get_origin(source), typing.get_origin(target)
    if source_origin in _UNIONS:
        return all(assignable(member, target) for member in typing.get_args(source))
    if target_origin in _UNIONS:
        return any(assignable(source, member) for member in typing.get_args(target))
    if source_origin is typing.Literal:
        return all(_value_fits(value, target) for value in typing.get_args(source))
    if target_origin is typing.Literal:
        # A plain type may carry one of the literal values: checked at run time.
        return any(assignable(type(value), source) for value in typing.get_args(target))
    return _classes_assignable(source, target)


def _value_fits(value: Any, target: Any) -> bool:
    if typing.get_origin(target) is typing.Literal:
        return value in typing.get_args(target)
    return assignable(type(value), target)


def _classes_assignable(source: Any, target: Any) -> bool:
    source_class = typing.get_origin(source) or source
    target_class = typing.get_origin(target) or target
    if not (isinstance(source_class, type) and isinstance(target_class, type)):
        return False  # unknown typing construct: an explicit declaration must match exactly
    if _json_object(source_class) and _json_object(target_class):
        if issubclass(source_class, BaseModel) or issubclass(target_class, BaseModel):
            return True
        return _arguments_assignable(source, target, target_class)  # mapping to mapping
    if (source_class, target_class) in _NUMERIC_WIDENING:
        return True
    if not issubclass(source_class, target_class):
        return False
    return _arguments_assignable(source, target, target_class)


def _json_object(cls: type) -> bool:
    return issubclass(cls, (BaseModel, dict, cabc.Mapping))


def _arguments_assignable(source: Any, target: Any, target_class: type) -> bool:
    source_args, target_args = typing.get_args(source), typing.get_args(target)
    if not source_args or not target_args:
        return True
    if issubclass(target_class, tuple) and not issubclass(target_class, cabc.Mapping):
        return _tuples_assignable(source_args, target_args)
    if len(source_args) != len(target_args):
        return True  # unusual parametrisation: leave it to run time
    return all(assignable(s, t) for s, t in zip(source_args, target_args, strict=True))


def _tuples_assignable(source_args: tuple[Any, ...], target_args: tuple[Any, ...]) -> bool:
    if len(target_args) == 2 and target_args[1] is Ellipsis:
        item = target_args[0]
        members = source_args[:1] if source_args[-1:] == (Ellipsis,) else source_args
        return all(assignable(s, item) for s in members)
    if source_args[-1:] == (Ellipsis,) or len(source_args) != len(target_args):
        return False
    return all(assignable(s, t) for s, t in zip(source_args, target_args, strict=True))
