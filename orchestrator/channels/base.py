"""What the coordinator's channels carry, and what a transport must do to carry them.

Every implementation (Redis streams, kombu, in memory) imports its names from
here and nothing else of this package, so no module of the package imports
another that imports it back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("segue.broker")

RESULTS_QUEUE = "segue.results"
"""Prefix of a job's results queue: ``segue.results.<job>``."""
CONTROL_QUEUE = "segue.control"
"""The wake-ups every coordinator receives."""

Body = dict[str, Any]
"""One message: a JSON object."""
Delivery = tuple[Body, object]
"""A message and the token that releases it (:meth:`Transport.done`)."""
ResultsHandler = Callable[[str, list[Delivery]], None]
"""Called with a job id and the results that arrived for it, in order."""
ControlHandler = Callable[[Body], None]
"""Called with each wake-up, in order."""


def decode(raw: bytes | str | None, queue: str) -> Body | None:
    """A message's JSON object, or ``None`` (logged once) when it is not one.

    What is not a JSON object cannot be a result or a wake-up: the transports
    drop it instead of handing it on, so it cannot stop the coordinator.
    """
    try:
        body = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        body = None
    if not isinstance(body, dict):
        log.warning("dropped a message from %s that is not a JSON object: %.200r", queue, raw)
        return None
    return body


class Transport(Protocol):
    """How the coordinator's queues are carried by one kind of broker.

    Queue names are full names (prefix included); :class:`~orchestrator.channels.Channels`
    derives them from job ids. Publishing and :meth:`done` are safe from any
    thread; the other calls come from the one consuming thread.
    """

    def transient(self, error: BaseException) -> bool:
        """Whether ``error`` says the broker is away for now (a dropped connection, a
        restart): the call may be made again once it is back."""
        ...

    def publish_result(self, queue: str, body: Body) -> None:
        """Append ``body`` to ``queue``; dropped when the queue does not exist."""
        ...

    def publish_control(self, body: Body) -> None:
        """Send ``body`` to every consumer started before it."""
        ...

    def consume(self, on_results: ResultsHandler, on_control: ControlHandler) -> None:
        """Start receiving wake-ups; results of followed queues go to ``on_results``."""
        ...

    def follow(self, job_id: str, queue: str) -> list[Delivery]:
        """Create ``queue`` if needed, read on from its end; returns what waits there."""
        ...

    def forget(self, queue: str, delete: bool) -> None:
        """Stop reading ``queue`` (releasing what is done first); ``delete`` drops it."""
        ...

    def done(self, queue: str, tokens: list[object]) -> None:
        """Ask for these deliveries to be taken off the broker (thread-safe)."""
        ...

    def release(self) -> None:
        """Carry out the releases :meth:`done` asked for."""
        ...

    def drain(self, timeout: float) -> int:
        """Deliver what waits, waiting up to ``timeout`` s for the first; returns how many."""
        ...

    def depth(self, queues: list[str]) -> dict[str, int]:
        """Messages waiting per queue."""
        ...

    def close(self) -> None:
        """Let go of the broker; what was not released stays for the next reader."""
        ...
