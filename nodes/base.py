"""Base classes of the node SDK.

A node type is a subclass of :class:`Node` (blocking), :class:`Sink`
(non-blocking) or :class:`Producer` (starts and paces a loop). It declares its
ports and configuration as nested pydantic models::

    class Scale(Node):
        \"\"\"Multiply a number by a configured factor.\"\"\"

        class Config(NodeConfig):
            factor: float = 2.0

        class Inputs(Ports):
            value: float

        class Outputs(Ports):
            value: float

        def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
            return self.Outputs(value=inputs.value * self.config.factor)

``run`` may be ``async``, and may be a generator (sync or async) yielding
``Outputs`` one chunk at a time on ``Stream[T]`` ports (see
:mod:`nodes.streams`). Nothing in a class body runs user input: a workflow
names a registered type, never a Python path.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, JsonValue

from nodes.context import RunContext
from nodes.errors import NodeDefinitionError

TYPE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class NodeConfig(BaseModel):
    """Base of a node type's ``Config``: unknown keys are rejected, values taken as written.

    Validation is strict: a workflow file says what it means, so ``"5"`` is not
    an integer, ``true`` is not a number and ``1`` is not ``true`` (an integer
    is still a valid float). Numbers must be finite (``.inf`` and ``NaN`` are
    refused, also inside JSON values). Declare choices as ``Literal`` strings:
    strict validation takes only members for an ``Enum`` field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Ports(BaseModel):
    """Base of a node type's ``Inputs`` and ``Outputs``: each field is a port."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


class NodeKind(enum.StrEnum):
    """What role a node type plays in a loop."""

    TASK = "task"
    SINK = "sink"
    PRODUCER = "producer"


class Role(enum.StrEnum):
    """What the orchestrator itself does with a node type's runs, besides running them.

    Most node types are ``COMPUTE``: their runs go to an executor. The others are
    the built-in types the core treats specially, named by role rather than by
    type name so the core never compares type-name strings.
    """

    COMPUTE = "compute"
    INPUT = "input"
    """Settled by the scheduler from the job's inputs."""
    OUTPUT = "output"
    """Settled by the scheduler: its value becomes a job output."""
    GROUP = "group"
    """Settled by the scheduler: its sub-workflow runs once per item."""
    QUEUE_WRITER = "queue-writer"
    """Runs in the driver's process, on its queue backend."""
    QUEUE_READER = "queue-reader"
    """A producer that runs in the driver's process, on its queue backend."""
    COMMENT = "comment"
    """A note: no ports, left out of the plan, never run."""

    settled: bool
    """Whether the scheduler settles the run itself (no executor is involved)."""
    queue: bool
    """Whether runs use the driver's queue backend (so run in its process)."""

    def __init__(self, value: str) -> None:
        # plain attributes, not properties: asked for every run
        self.settled = value in ("input", "output", "group")
        self.queue = value in ("queue-writer", "queue-reader")


@dataclass(frozen=True)
class Resources:
    """What a node run needs from the worker that runs it.

    Attributes:
        gpu: GPUs a run holds; a node type with ``gpu > 0`` runs on the
            ``gpu`` queue, served by workers that take one task at a time.
        vram_mb: GPU memory a run uses at most, in MiB (0: not declared; such
            a run has its GPU to itself). A GPU worker with ``--gpu-share``
            runs runs side by side while their ``vram_mb`` fits its device; a
            workflow node may raise it (``resources: {vram_mb: N}``).
    """

    gpu: int = 0
    vram_mb: int = 0


@dataclass(frozen=True)
class Produced:
    """One item from a producer plus the cursor that resumes after it."""

    outputs: Ports
    cursor: JsonValue


class Exhausted:
    """A producer's answer when it has no more items."""

    _instance: ClassVar[Exhausted | None] = None

    def __new__(cls) -> Exhausted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EXHAUSTED"


EXHAUSTED = Exhausted()


class Node:
    """A blocking node: its loop's next iteration waits for it.

    Class attributes a subclass may set:
        type_name: Registered name (defaults to the class name).
        version: Bump when outputs change for the same inputs; part of cache keys.
        blocking: False makes every use of the type detached.
        cacheable: True makes every use of the type reuse stored outputs.
        resources: What a run needs (``Resources(gpu=1)``).
        subworkflow_field: Name of a config field holding a nested workflow,
            which validation checks like a top-level one.
        inline: True promises that a run takes microseconds and never blocks
            (pure computation on small values); the embedded engine may then
            run it on its own thread instead of handing it to a pool.
        role: What the orchestrator does with its runs (built-in types only;
            see :class:`Role`).
    """

    type_name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    kind: ClassVar[NodeKind] = NodeKind.TASK
    blocking: ClassVar[bool] = True
    cacheable: ClassVar[bool] = False
    resources: ClassVar[Resources] = Resources()
    subworkflow_field: ClassVar[str | None] = None
    inline: ClassVar[bool] = False
    role: ClassVar[Role] = Role.COMPUTE

    class Config(NodeConfig):
        """No configuration."""

    class Inputs(Ports):
        """No inputs."""

    class Outputs(Ports):
        """No outputs."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__

    def __init__(self, config: NodeConfig | None = None) -> None:
        self.config: Any = config if config is not None else self.Config()

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Node:
        """Build a node from a JSON config, validating it against ``Config``."""
        return cls(cls.Config.model_validate(config or {}))

    def run(self, inputs: Any, ctx: RunContext) -> Any | Awaitable[Any]:
        """Compute ``Outputs`` from ``Inputs``; may be ``async``."""
        raise NotImplementedError(f"node type {self.type_name!r} does not implement run()")

    @classmethod
    def config_problems(cls, config: Any) -> list[tuple[str, str]]:
        """Faults of a (validated) config that would fail every run, as (field, message).

        Validation reports them before anything runs, located at the field; a
        node built directly is not asked, and fails its runs as it would. None
        by default; a type overrides it for what its ``Config`` types cannot
        say (a template that cannot render, say).
        """
        return []

    @classmethod
    def runs_inline(cls, config: Any) -> bool:
        """Whether a run with this (validated) config may run on the engine's thread.

        Defaults to the ``inline`` class attribute; a type whose cost depends on
        its config (a paced producer, say) decides per config.
        """
        return cls.inline

    @classmethod
    def is_async(cls) -> bool:
        """Whether the type's work method is a coroutine or async generator function."""
        found = _IS_ASYNC.get(cls)
        if found is None:  # asked for every run: found once per type
            method = cls.produce if issubclass(cls, Producer) else cls.run
            found = inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
            _IS_ASYNC[cls] = found
        return found


_IS_ASYNC: dict[type[Node], bool] = {}


class Sink(Node):
    """A non-blocking node: dispatched beside the loop and never awaited by it."""

    kind = NodeKind.SINK
    blocking = False


class Producer(Node):
    """Starts and paces a loop: each ``produce`` call yields one iteration's item.

    ``produce`` receives the cursor it returned last time (``None`` at the
    start) and returns :class:`Produced` or :data:`EXHAUSTED`. The cursor is
    JSON and stored with the loop, so a restarted loop resumes where it stopped.
    """

    kind = NodeKind.PRODUCER

    def produce(
        self, inputs: Any, cursor: JsonValue, ctx: RunContext
    ) -> Produced | Exhausted | Awaitable[Produced | Exhausted]:
        """Return the next item and cursor, or ``EXHAUSTED``."""
        raise NotImplementedError(f"producer {self.type_name!r} does not implement produce()")

    def run(self, inputs: Any, ctx: RunContext) -> Any:
        raise NodeDefinitionError(
            f"producer {self.type_name!r} is driven through produce(), not run()"
        )


def check_node_class(cls: object) -> type[Node]:
    """Check that ``cls`` is a well-formed node type and return it.

    Raises:
        NodeDefinitionError: naming the class and what is wrong with it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Node)) or cls in (Node, Sink, Producer):
        raise NodeDefinitionError(f"{cls!r} is not a node type (subclass Node, Sink or Producer)")
    name = cls.type_name
    if not TYPE_NAME_PATTERN.match(name):
        raise NodeDefinitionError(
            f"node type name {name!r} of {cls.__qualname__} must match {TYPE_NAME_PATTERN.pattern}"
        )
    for part in ("Config", "Inputs", "Outputs"):
        model = getattr(cls, part)
        base = NodeConfig if part == "Config" else Ports
        if not (isinstance(model, type) and issubclass(model, base)):
            raise NodeDefinitionError(f"{name}.{part} must subclass {base.__name__}, got {model!r}")
    if cls.version < 1:
        raise NodeDefinitionError(f"{name}.version must be at least 1")
    if cls.resources.gpu < 0:
        raise NodeDefinitionError(f"{name}.resources.gpu must not be negative")
    if cls.resources.vram_mb < 0 or (cls.resources.vram_mb and not cls.resources.gpu):
        raise NodeDefinitionError(
            f"{name}.resources.vram_mb must not be negative, and needs gpu >= 1"
        )
    field = cls.subworkflow_field
    if field is not None and field not in cls.Config.model_fields:
        raise NodeDefinitionError(f"{name}.subworkflow_field names no Config field {field!r}")
    return cls
