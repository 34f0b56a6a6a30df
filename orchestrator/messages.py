"""What crosses an executor boundary: a request to run one node run.

It is JSON (it crosses the broker in distributed mode): the node is named by
its registered type, never pickled. The result that comes back is a
:class:`~orchestrator.results.RunResult`, as its JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

RunKind = Literal["run", "produce"]


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
        resent: The coordinator sent this attempt before (after a takeover, or
            reconciling): it may have run already.
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
    resent: bool = False
