"""The workflow model: what a workflow file says, as frozen pydantic models.

The models check the shape of a workflow (fields, identifiers, ranges);
whether the graph makes sense is :mod:`orchestrator.validation`'s job.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENDPOINT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
QUEUE_NAME = r"^[A-Za-z0-9_.:-]{1,200}$"

Pool = Literal["thread", "asyncio", "process"]
OnError = Literal["stop", "continue", "pause"]


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False
    )


class RetryPolicy(_Spec):
    """How often a failing node run is tried, and how long to wait between tries.

    The wait before retry ``n`` (1-based) is ``backoff_s * multiplier**(n-1)``,
    capped at ``max_backoff_s``.
    """

    attempts: int = Field(1, ge=1, le=1000, description="Total tries, the first included")
    backoff_s: float = Field(0.0, ge=0, description="Wait before the first retry")
    max_backoff_s: float = Field(60.0, ge=0, description="Upper bound of any wait")
    multiplier: float = Field(2.0, ge=1, description="Growth of the wait per retry")


class LoopPolicy(_Spec):
    """How one loop runs: pool, error policy and bounds.

    ``until`` (``node.port``) ends the loop, completed, after the first
    iteration in which that output of a node of the loop is truthy;
    ``max_iterations`` caps any loop (a generation limit).
    """

    pool: Pool = "thread"
    on_error: OnError = "stop"
    max_iterations: int | None = Field(None, ge=0)
    max_inflight_nonblocking: int = Field(64, ge=1)
    until: str | None = None

    @field_validator("until")
    @classmethod
    def _until_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not ENDPOINT.match(value):
            raise ValueError(f"{value!r} is not of the form node.port (an output of the loop)")
        return value

    @property
    def until_node(self) -> str | None:
        """The node ``until`` names, if any."""
        return None if self.until is None else _split(self.until)[0]

    @property
    def until_port(self) -> str | None:
        """The output port ``until`` names, if any."""
        return None if self.until is None else _split(self.until)[1]


class NodeResources(_Spec):
    """A workflow node's ``resources``: what its runs need beyond its type's declaration."""

    vram_mb: int = Field(
        gt=0, le=16 * 1024 * 1024, description="GPU memory a run uses at most, in MiB"
    )


class NodeSpec(_Spec):
    """One node of a workflow: an id, a registered type, its config and options."""

    id: str = Field(pattern=IDENT)
    type: str = Field(min_length=1)
    config: dict[str, JsonValue] = Field(default_factory=dict)
    description: str | None = None
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(None, gt=0)
    cache: bool | None = None
    queue: str | None = Field(None, pattern=QUEUE_NAME)
    blocking: bool | None = None
    resources: NodeResources | None = None


class EdgeSpec(_Spec):
    """``from: node.port`` → ``to: node.port``; ``feedback`` feeds the next iteration."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    feedback: bool = False
    initial: JsonValue = None

    @field_validator("source", "target")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not ENDPOINT.match(value):
            raise ValueError(f"{value!r} is not of the form node.port")
        return value

    def __eq__(self, other: object) -> bool:
        # `initial: null` written out differs from no `initial` (a feedback edge into
        # a required input needs one), which pydantic's equality cannot see.
        if not isinstance(other, EdgeSpec):
            return NotImplemented
        return super().__eq__(other) and self.has_initial == other.has_initial

    def __hash__(self) -> int:
        return hash((self.source, self.target, self.feedback, self.has_initial))

    @property
    def source_node(self) -> str:
        """The id of the node the edge leaves."""
        return _split(self.source)[0]

    @property
    def source_port(self) -> str:
        """The output port the edge leaves."""
        return _split(self.source)[1]

    @property
    def target_node(self) -> str:
        """The id of the node the edge enters."""
        return _split(self.target)[0]

    @property
    def target_port(self) -> str:
        """The input port the edge enters."""
        return _split(self.target)[1]

    @property
    def has_initial(self) -> bool:
        """Whether the file gave ``initial`` (``null`` included)."""
        return "initial" in self.__pydantic_fields_set__

    @property
    def label(self) -> str:
        """The edge as ``a.x -> b.y`` (with ``(feedback)`` for a feedback edge)."""
        return f"{self.source} -> {self.target}" + (" (feedback)" if self.feedback else "")


def _split(endpoint: str) -> tuple[str, str]:
    node, _, port = endpoint.partition(".")
    return node, port
