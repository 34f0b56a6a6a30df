"""What crosses an executor boundary and the broker: a request to run one node run,
a running node's live report, and the wake-ups clients send the coordinators.

All are JSON (they cross the broker in distributed mode): the node is named by
its registered type, never pickled. The result that comes back is a
:class:`~orchestrator.results.RunResult`, as its JSON. Whoever receives a
message validates it and drops (logging once) what does not fit: a malformed
message must never take down the process that reads it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

RunKind = Literal["run", "produce"]
JOB_ID = r"^[A-Za-z0-9_.-]{1,128}$"
"""What a job id looks like (``uuid4().hex[:16]`` when Segue makes one)."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunRequest(_Message):
    """Everything a worker needs to execute one attempt of one node run.

    Attributes:
        run_id: ``{job}:{loop}:{iteration}:{node}``; the Celery task id.
        kind: ``run`` for a node, ``produce`` for a producer's next item.
        cursor: The producer cursor to resume from (``produce`` only).
        writers_done: For a queue reader, every writer of its queue has ended.
        inputs: Input port values, JSON (artifacts as their reference objects).
        attempts: The retry policy's total attempts: a failure of an earlier
            attempt is recorded ``retrying``, of the last one ``failed``.
        job_inputs: The job's inputs, sent only to ``Input`` nodes.
        cache: Whether to reuse stored outputs for identical type, version,
            config and inputs.
        queue: The broker queue the run is routed to.
        vram_mb: GPU memory the run declares, in MiB (0: not declared).
        resent: The coordinator sent this attempt before (after a takeover, or
            reconciling): it may have run already.
        streams: Live stream outlets, as (output port, consumer node id).
    """

    run_id: str
    job_id: str
    loop: str
    iteration: int = Field(ge=0)
    node_id: str
    type_name: str
    type_version: int = 1
    config: dict[str, JsonValue] = Field(default_factory=dict)
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    attempt: int = Field(1, ge=1)
    attempts: int = Field(1, ge=1)
    kind: RunKind = "run"
    cursor: JsonValue = None
    writers_done: bool = False
    job_inputs: dict[str, JsonValue] = Field(default_factory=dict)
    timeout_s: float | None = None
    cache: bool = False
    queue: str = "thread"
    pool: str = "thread"
    gpu: int = 0
    vram_mb: int = Field(0, ge=0)
    resent: bool = False
    streams: list[tuple[str, str]] = Field(default_factory=list)


class NodeEventMessage(_Message):
    """A running node's live report (progress or a preview), sent to its job's results queue.

    Attributes:
        run_id: ``{job}:{loop}:{iteration}:{node}`` of the run reporting.
        kind: ``progress`` or ``preview``.
        data: What the node reported.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}:[^:]+:[0-9]+:[^:]+$")
    kind: str = Field(min_length=1, max_length=100)
    data: JsonValue = None

    def job_id(self) -> str:
        """The job the reporting run belongs to."""
        return self.run_id.split(":", 1)[0]


class ControlMessage(BaseModel):
    """A wake-up on ``segue.control``: a client wrote a request for ``job`` to the store.

    The store is the source of truth; the message only says where to look now.
    Fields a later version adds are ignored.

    Attributes:
        kind: ``submit``, ``loop`` (a desired loop state) or ``cancel``.
        job: The job id.
        loop: The loop, for ``loop``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    kind: Literal["submit", "loop", "cancel"]
    job: str = Field(pattern=JOB_ID)
    loop: str | None = Field(default=None, max_length=200)
