"""Queue nodes: how loops (and, with ``scope: global``, jobs) pass values along.

A ``QueueWriter`` in one loop pushes into a named queue; each ``QueueReader``
loop reading that name receives every message, and readers sharing a
``group`` share the messages between them. The engine's queue backend moves
the messages, so neither class computes anything in ``run``/``produce``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, JsonValue

from nodes.base import Exhausted, Node, NodeConfig, Ports, Produced, Producer, Role, Sink
from nodes.context import RunContext
from nodes.errors import NodeDefinitionError

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"

QueueScope = Literal["job", "global"]

_SCOPE_DESCRIPTION = "job: the queue is private to the job; global: shared by every job naming it"


def _engine_driven(type_name: str) -> NodeDefinitionError:
    return NodeDefinitionError(
        f"{type_name} is driven by the engine's queue backend and cannot run on its own; "
        f"run the workflow through an engine (`segue run`)"
    )


class QueueWriter(Sink):
    """Push each value into a named queue (non-blocking).

    The driver's queue backend performs the push (its role says so); ``run``
    only raises if called directly.
    """

    role = Role.QUEUE_WRITER

    class Config(NodeConfig):
        queue: str = Field(pattern=QUEUE_NAME_PATTERN, description="Name of the queue")
        scope: QueueScope = Field(default="job", description=_SCOPE_DESCRIPTION)

    class Inputs(Ports):
        value: Any = Field(description="The JSON value to push")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> None:
        raise _engine_driven(self.type_name)


class QueueReader(Producer):
    """Start a loop iteration for each message of a named queue.

    A job-scoped reader's loop ends when every writer of the queue in the job
    has ended and the queue is drained; ``idle_timeout_s`` also ends it after
    that long without a message. Messages are acknowledged only after the
    iteration they started has finished (at-least-once delivery).

    The driver's queue backend delivers the messages (its role says so);
    ``produce`` only raises if called directly.
    """

    role = Role.QUEUE_READER

    class Config(NodeConfig):
        queue: str = Field(pattern=QUEUE_NAME_PATTERN, description="Name of the queue")
        group: str | None = Field(
            default=None,
            pattern=QUEUE_NAME_PATTERN,
            description="Readers naming the same group share messages instead of each getting all",
        )
        scope: QueueScope = Field(default="job", description=_SCOPE_DESCRIPTION)
        idle_timeout_s: float | None = Field(
            default=None, ge=0, description="End the loop after this long without a message"
        )

    class Outputs(Ports):
        item: Any = Field(description="The message")

    config: Config

    def produce(
        self, inputs: Node.Inputs, cursor: JsonValue, ctx: RunContext
    ) -> Produced | Exhausted:
        raise _engine_driven(self.type_name)
