"""What the scheduler decides: runs to dispatch or revoke, messages to
acknowledge, and the state changes the driver must record.

The driver (the embedded engine or the coordinator) carries these out: it
never decides anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from nodes.base import Role
from nodes.ids import RunId
from orchestrator.messages import RunKind, RunRequest
from orchestrator.planner.plan import PlannedNode


class Dispatch(NamedTuple):
    """Run one attempt of one node run (a named tuple: there is one per run).

    Attributes:
        inputs: Input port values for this attempt.
        cursor: Where a producer resumes (``kind == "produce"``).
        writers_done: For a queue reader: every writer of its queue has ended,
            so an empty queue means the reader is exhausted.
        deadline: When the attempt times out (``None``: never).
        resent: This attempt was sent before (after a takeover or when
            reconciling): it may have run already, so a worker asks the store
            before it runs it.
        path: The node's path in the run id (see :attr:`node_id`).
    """

    run_id: str
    node: PlannedNode
    loop: str
    iteration: int
    attempt: int
    inputs: dict[str, Any]
    kind: RunKind = "run"
    cursor: Any = None
    writers_done: bool = False
    deadline: float | None = None
    job_id: str = ""
    resent: bool = False
    path: str = ""

    @property
    def node_id(self) -> str:
        """The node's path: its id, or ``group.k.node`` inside a group (the
        scheduler gives it as ``path``; else it is read from the run id)."""
        return self.path or RunId.node_of(self.run_id)

    @property
    def type_name(self) -> str:
        """The registered node type."""
        return self.node.type_name

    @property
    def type_version(self) -> int:
        """The node type's version (part of cache keys)."""
        return self.node.type_version

    @property
    def config(self) -> Any:
        """The node's JSON config."""
        return self.node.config

    @property
    def settings(self) -> Any:
        """The node's config, already validated by the planner."""
        return self.node.settings

    @property
    def cache(self) -> bool:
        """Whether outputs may be reused from the cache."""
        return self.node.cache

    @property
    def streams(self) -> tuple[tuple[str, str], ...]:
        """Live stream outlets, as (output port, consumer node id)."""
        return self.node.streams

    @property
    def vram_mb(self) -> int:
        """GPU memory one run declares, in MiB (0: not declared)."""
        return self.node.route.vram_mb

    @property
    def attempts(self) -> int:
        """The retry policy's total attempts."""
        return self.node.retry.attempts

    @property
    def job_inputs(self) -> dict[str, Any]:
        """Input nodes are resolved by the scheduler, so a dispatch carries none."""
        return {}

    def to_request(self, job_id: str, job_inputs: dict[str, Any]) -> RunRequest:
        """The JSON request a worker receives for this dispatch."""
        node = self.node
        return RunRequest(
            run_id=self.run_id,
            job_id=job_id,
            loop=self.loop,
            iteration=self.iteration,
            node_id=self.node_id,
            type_name=node.type_name,
            type_version=node.type_version,
            config=dict(node.config),
            inputs=self.inputs,
            attempt=self.attempt,
            attempts=node.retry.attempts,
            kind=self.kind,
            cursor=self.cursor,
            writers_done=self.writers_done,
            job_inputs=job_inputs if node.role is Role.INPUT else {},
            timeout_s=node.timeout_s,
            cache=node.cache,
            queue=node.route.queue,
            pool=node.route.pool,
            gpu=node.route.gpu,
            vram_mb=node.route.vram_mb,
            resent=self.resent,
            streams=list(node.streams),
        )


@dataclass(frozen=True)
class Revoke:
    """Stop an attempt that is no longer wanted (timed out or cancelled)."""

    run_id: str
    attempt: int


@dataclass(frozen=True)
class Ack:
    """Acknowledge a queue message: its reader's iteration has ended."""

    loop: str
    node: str
    delivery: str


class RunChanged(NamedTuple):
    """A node run reached a recorded state (retrying, a final state).

    ``error`` and ``traceback`` are those of the latest failed attempt (of a
    ``retrying`` or ``failed`` run); a timeout raised nothing, so has no traceback.
    """

    run_id: str
    loop: str
    iteration: int
    node: PlannedNode
    status: str
    attempt: int
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    traceback: str | None = None
    path: str = ""

    @property
    def node_id(self) -> str:
        """The node's path (``group.k.node`` inside a group)."""
        return self.path or RunId.node_of(self.run_id)


@dataclass(frozen=True)
class LoopChanged:
    """A loop's recorded state changed."""

    loop: str
    status: str
    desired: str
    iterations: int
    failed_iterations: int
    cursor: Any = None


@dataclass(frozen=True)
class JobChanged:
    """The job's state changed; ``outputs`` and ``error`` are final once it ended."""

    status: str
    outputs: dict[str, Any]
    error: str | None = None


Command = Dispatch | Revoke | Ack | RunChanged | LoopChanged | JobChanged
