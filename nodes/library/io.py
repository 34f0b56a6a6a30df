"""Nodes at the edges of a workflow: job inputs, job outputs, constants, previews."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, JsonValue
from pydantic_core import PydanticSerializationError, to_jsonable_python

from nodes.base import Node, NodeConfig, Ports, Role, Sink
from nodes.context import RunContext
from nodes.errors import FatalNodeError


class Input(Node):
    """Read one of the inputs the job was submitted with.

    The value comes from the job's inputs (``segue run -i name=value``); when
    the job was submitted without it, from ``default``. A configured
    ``default: null`` is a default; a missing ``default`` is not, and then the
    run fails naming the input.
    """

    role = Role.INPUT

    class Config(NodeConfig):
        name: str = Field(min_length=1, description="Name of the job input to read")
        default: JsonValue = Field(
            default=None, description="Value used when the job has no such input"
        )

    class Outputs(Ports):
        value: Any = Field(description="The job input's value")

    config: Config

    def run(self, inputs: Node.Inputs, ctx: RunContext) -> Outputs:
        name = self.config.name
        if name in ctx.job_inputs:
            return self.Outputs(value=ctx.job_inputs[name])
        if "default" in self.config.model_fields_set:
            return self.Outputs(value=self.config.default)
        raise FatalNodeError(
            f"node {ctx.node_id!r} needs the job input {name!r}, which was not given "
            f"and has no default; submit the job with `-i {name}=VALUE` "
            f"or give the node a `default`"
        )


class Output(Node):
    """Publish a value as one of the job's outputs.

    In the main stage the output is the one value received; in a loop it is
    the list of values in iteration order, or the last one with
    ``collect: last``. The value also passes through, so it can feed other nodes.
    """

    role = Role.OUTPUT

    class Config(NodeConfig):
        name: str = Field(min_length=1, description="Name of the job output")
        collect: Literal["list", "last"] = Field(
            default="list",
            description="In a loop: keep every iteration's value (list) or only the last",
        )

    class Inputs(Ports):
        value: Any = Field(description="The value to publish")

    class Outputs(Ports):
        value: Any = Field(description="The same value, passed through")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(value=inputs.value)


class Constant(Node):
    """Emit a configured JSON value."""

    class Config(NodeConfig):
        value: JsonValue = Field(description="The value to emit")

    class Outputs(Ports):
        value: Any = Field(description="The configured value")

    inline = True
    config: Config

    def run(self, inputs: Node.Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(value=self.config.value)


class Preview(Sink):
    """Show a value in the job's event stream (a ``preview`` event).

    The event carries ``{"label", "value"}``; a value whose JSON is longer
    than ``max_chars`` (or that is not JSON) is replaced by its truncated repr,
    so a preview never floods the event log.
    """

    class Config(NodeConfig):
        label: str | None = Field(default=None, description="Caption shown with the value")
        max_chars: int = Field(
            default=2000, ge=1, description="Longest JSON shown before truncating to a repr"
        )

    class Inputs(Ports):
        value: Any = Field(description="The value to show")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> None:
        value: JsonValue = preview_value(inputs.value, self.config.max_chars)
        ctx.emit("preview", {"label": self.config.label, "value": value})


def preview_value(value: Any, max_chars: int) -> JsonValue:
    """``value`` as JSON when it fits in ``max_chars``, else its truncated repr."""
    try:
        jsonable = to_jsonable_python(value)
        encoded = json.dumps(jsonable, allow_nan=False)
    except (PydanticSerializationError, TypeError, ValueError):
        encoded = None
    if encoded is not None and len(encoded) <= max_chars:
        result: JsonValue = jsonable
        return result
    text = repr(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
