"""The immutable execution plan a validated workflow compiles to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from pydantic import JsonValue

from nodes.base import NodeConfig, NodeKind, Role
from orchestrator.model.spec import LoopPolicy, Pool, RetryPolicy

QueueScope = Literal["job", "global"]


class Route(NamedTuple):
    """Where a node's runs execute.

    Attributes:
        pool: The executor pool (the loop's ``pool``).
        queue: The broker queue: the entry's ``queue``, else ``gpu`` for GPU
            types, else the pool's name.
        gpu: GPUs one run holds.
        vram_mb: GPU memory one run declares (the type's, or the entry's when
            it raises it); 0: not declared.
    """

    pool: Pool
    queue: str
    gpu: int
    vram_mb: int = 0


class InputBinding(NamedTuple):
    """Where one input port takes its value from (a named tuple: plans hold many)."""

    port: str
    source: str
    source_port: str
    feedback: bool = False
    initial: JsonValue = None
    has_initial: bool = False
    stream: bool = False
    """A live stream edge: the input reads the source's chunks while it runs."""


class PlannedNode(NamedTuple):
    """One node as the scheduler sees it (a named tuple: plans hold many).

    ``config`` is the entry's JSON config as written (what crosses to workers);
    ``settings`` is the same config validated by the type's ``Config`` model,
    defaults filled in, for the engine's own reading.
    """

    id: str
    type_name: str
    type_version: int
    kind: NodeKind
    role: Role
    config: Mapping[str, Any]
    settings: NodeConfig
    loop: str
    blocking: bool
    detached: bool
    inputs: tuple[InputBinding, ...]
    consumers: tuple[str, ...]
    route: Route
    retry: RetryPolicy
    timeout_s: float | None
    cache: bool
    position: int
    streams: tuple[tuple[str, str], ...] = ()
    """Live stream outlets, as (output port, consumer id): the chunks it sends."""
    upstream: tuple[str, ...] = ()
    """Nodes whose outputs this one waits for in the same iteration (from ``inputs``)."""
    live: bool = False
    """Whether an input reads a stream while its source runs (from ``inputs``)."""
    inline: bool = False
    """Whether its type says a run with this config is cheap enough to run on the
    engine's own thread (``Node.runs_inline``); the embedded executor does so unless
    its route or a live stream sends it elsewhere."""


@dataclass(frozen=True)
class LoopPlan:
    """A loop (or the main stage): its nodes in dataflow order and its policy.

    Attributes:
        name: The producer's id, or ``main``.
        producer: The producer node id (``None`` for the main stage).
        nodes: Member ids in a topological order, the producer first.
        blocking: Members the iteration waits for.
        detached: Members dispatched and not awaited (non-blocking and downstream).
        feedback: Feedback bindings, as (target node, binding).
        outputs: ``Output`` node ids in the loop.
    """

    name: str
    producer: str | None
    policy: LoopPolicy
    nodes: tuple[str, ...]
    blocking: tuple[str, ...]
    detached: tuple[str, ...]
    feedback: tuple[tuple[str, InputBinding], ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class QueueEndpoint:
    """A node that writes or reads a queue."""

    loop: str
    node: str
    group: str | None = None


@dataclass(frozen=True)
class QueuePlan:
    """A named queue, who writes it and who reads it."""

    name: str
    scope: QueueScope
    writers: tuple[QueueEndpoint, ...]
    readers: tuple[QueueEndpoint, ...]


class InputTarget(NamedTuple):
    """An input port fed by an ``Input`` node: where a job input's value goes."""

    node: str
    port: str
    annotation: Any


@dataclass(frozen=True)
class InputPlan:
    """A job input read by one or more ``Input`` nodes.

    Attributes:
        targets: The input ports the ``Input`` nodes feed, whose types the
            job's value is checked against when the job is submitted.
    """

    name: str
    nodes: tuple[str, ...]
    has_default: bool
    default: JsonValue = None
    targets: tuple[InputTarget, ...] = ()


@dataclass(frozen=True)
class OutputPlan:
    """A job output collected from an ``Output`` node."""

    name: str
    node: str
    loop: str
    collect: Literal["list", "last"]


@dataclass(frozen=True)
class Plan:
    """What a workflow compiles to: the main stage, the loops, queues and routes."""

    workflow: str
    nodes: Mapping[str, PlannedNode]
    main: LoopPlan
    loops: Mapping[str, LoopPlan]
    queues: Mapping[str, QueuePlan]
    inputs: Mapping[str, InputPlan]
    outputs: Mapping[str, OutputPlan]
    subplans: Mapping[str, Plan]
    comments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """``Comment`` nodes (id to text): shown, never run, in no loop."""
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """What the planner decided that a reader would not guess, per node (a stream
    between GPU nodes accumulated: :mod:`orchestrator.planner.gpustreams`)."""

    def loop(self, name: str) -> LoopPlan:
        """The loop called ``name`` (``main`` for the main stage).

        Raises:
            KeyError: naming the loop and the loops that exist.
        """
        if name == self.main.name:
            return self.main
        try:
            return self.loops[name]
        except KeyError:
            known = ", ".join([self.main.name, *self.loops])
            raise KeyError(
                f"workflow {self.workflow!r} has no loop {name!r}; loops: {known}"
            ) from None

    def all_loops(self) -> tuple[LoopPlan, ...]:
        """The main stage followed by every loop."""
        return (self.main, *self.loops.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON summary for ``segue plan --json``."""
        return {
            "workflow": self.workflow,
            "loops": [_loop_json(loop, self) for loop in self.all_loops()],
            "queues": [
                {
                    "name": q.name,
                    "scope": q.scope,
                    "writers": [f"{w.loop}/{w.node}" for w in q.writers],
                    "readers": [
                        f"{r.loop}/{r.node}" + (f"[{r.group}]" if r.group else "")
                        for r in q.readers
                    ],
                }
                for q in self.queues.values()
            ],
            "inputs": {
                i.name: {"nodes": list(i.nodes), "required": not i.has_default}
                for i in self.inputs.values()
            },
            "outputs": {
                o.name: {"node": o.node, "loop": o.loop, "collect": o.collect}
                for o in self.outputs.values()
            },
            "comments": [{"id": node, "text": text} for node, text in self.comments.items()],
            "notes": dict(self.notes),
        }


def _loop_json(loop: LoopPlan, plan: Plan) -> dict[str, Any]:
    return {
        "name": loop.name,
        "producer": loop.producer,
        "policy": loop.policy.model_dump(mode="json"),
        "nodes": [
            {
                "id": node_id,
                "type": plan.nodes[node_id].type_name,
                "detached": plan.nodes[node_id].detached,
                "queue": plan.nodes[node_id].route.queue,
            }
            for node_id in loop.nodes
        ],
        "feedback": [f"{b.source}.{b.source_port} -> {t}.{b.port}" for t, b in loop.feedback],
    }
