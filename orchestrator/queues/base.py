"""Queue backends: how queue nodes carry values between loops (DESIGN section 3.5).

A queue has subscriptions, one per reader group: every group receives every
message (broadcast), and the readers of one group share its messages
(competing consumers). A received message stays unacknowledged until its
reader's iteration ends; unacknowledged messages go back to the group when
their reader is gone (:meth:`QueueBackend.requeue_unacked`), so delivery is
at-least-once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """One delivery of a queued value."""

    id: str
    value: Any


def queue_key(job_id: str, queue: str, scope: str) -> str:
    """The backend's name for a queue: job-scoped queues are prefixed by the job."""
    return queue if scope == "global" else f"{job_id}:{queue}"


class QueueBackend(Protocol):
    """Durable, broadcast, competing-consumer queues."""

    def subscribe(self, queue: str, group: str) -> None:
        """Create the subscription ``group`` (idempotent); it receives every later message."""
        ...

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        """Append ``value`` to every subscription; a repeated ``message_id`` is dropped.

        Returns False when the id was published before.
        """
        ...

    def receive(self, queue: str, group: str, timeout_s: float) -> Message | None:
        """The next message of ``group``, waiting up to ``timeout_s``; ``None`` if none."""
        ...

    def ack(self, queue: str, group: str, message_id: str) -> None:
        """Forget a received message: its reader's iteration ended."""
        ...

    def requeue_unacked(self, queue: str, group: str) -> int:
        """Put received-but-unacknowledged messages back at the head; returns how many."""
        ...

    def depth(self, queue: str, group: str | None = None) -> int:
        """Messages waiting (in ``group``, or the largest of all groups)."""
        ...

    def queues(self) -> dict[str, dict[str, int]]:
        """Every queue with the depth of each of its groups."""
        ...

    def delete(self, queue: str) -> None:
        """Remove ``queue``: its groups, messages and ids seen (a job-scoped queue
        once its job ended)."""
        ...
