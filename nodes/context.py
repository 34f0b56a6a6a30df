"""The context a node run receives: identity, logging, progress, artifacts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from nodes.artifacts import ArtifactStore, MemoryArtifactStore
from nodes.ids import RunId

ProgressSink = Callable[[float, str | None], None]
EventSink = Callable[[str, JsonValue], None]


def _ignore_progress(fraction: float, message: str | None) -> None:
    """Default progress sink: a node run outside an engine reports to nobody."""


def _ignore_event(kind: str, data: JsonValue) -> None:
    """Default event sink: a node run outside an engine reports to nobody."""


class BoundLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that stamps every record with the run's job, loop, iteration and node."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


MAIN = "main"
"""The loop name of a workflow's main stage: the nodes fed by no producer. A
producer's loop is named after the producer, so no producer may be called this."""


@dataclass(frozen=True)
class RunContext:
    """What a node run knows about itself.

    Attributes:
        run_id: ``{job}:{loop}:{iteration}:{node}``, stable across retries and
            redeliveries; use it as the idempotency key of side effects.
        job_id: The job this run belongs to.
        loop: The loop name (``main`` for the main stage).
        iteration: The loop iteration (0 in the main stage).
        node_id: The node's id in the workflow.
        attempt: 1 for the first attempt, 2 for the first retry, ...
        artifacts: Where artifact bytes are read and written.
        job_inputs: The inputs the job was submitted with (read by ``Input``).
    """

    run_id: str
    job_id: str = "local"
    loop: str = MAIN
    iteration: int = 0
    node_id: str = "node"
    attempt: int = 1
    artifacts: ArtifactStore = field(default_factory=MemoryArtifactStore)
    job_inputs: Mapping[str, JsonValue] = field(default_factory=dict)
    progress_sink: ProgressSink = _ignore_progress
    event_sink: EventSink = _ignore_event
    logger_name: str = "segue.node"

    @property
    def idempotency_key(self) -> str:
        """The key under which a side effect of this run must be deduplicated."""
        return self.run_id

    @property
    def logger(self) -> BoundLogger:
        """A logger bound to job, loop, iteration and node."""
        return BoundLogger(
            logging.getLogger(self.logger_name),
            {
                "job": self.job_id,
                "loop": self.loop,
                "iteration": self.iteration,
                "node": self.node_id,
                "run_id": self.run_id,
            },
        )

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress of this run, ``fraction`` between 0 and 1."""
        self.progress_sink(min(1.0, max(0.0, float(fraction))), message)

    def emit(self, kind: str, data: JsonValue) -> None:
        """Publish a JSON payload into the job's event stream (``Preview`` uses it)."""
        self.event_sink(kind, data)

    @classmethod
    def for_run(
        cls, job_id: str, loop: str, iteration: int, node_id: str, **kwargs: Any
    ) -> RunContext:
        """Build the context of one node run, deriving its run id."""
        return cls(
            run_id=run_id(job_id, loop, iteration, node_id),
            job_id=job_id,
            loop=loop,
            iteration=iteration,
            node_id=node_id,
            **kwargs,
        )


def run_id(job_id: str, loop: str, iteration: int, node_id: str) -> str:
    """The deterministic id of one node run: ``{job}:{loop}:{iteration}:{node}``
    (:class:`~nodes.ids.RunId` reads it back)."""
    return str(RunId(job_id, loop, iteration, node_id))
