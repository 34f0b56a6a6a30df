"""Queue backends: how queue nodes carry values between loops (DESIGN section 3.5).

A queue has subscriptions, one per reader group: every group receives every
message (broadcast), and the readers of one group share its messages
(competing consumers). A received message stays unacknowledged until its
reader's iteration ends; unacknowledged messages go back to the group when
their reader is gone (:meth:`QueueBackend.requeue_unacked`), so delivery is
at-least-once.

A driver that takes over a job (its previous driver died) settles what that
driver held of the job's own queues: the messages its journal shows consumed
are acknowledged (the journal holds their values; delivered again, they would
be consumed twice), the others go back to the head of their group
(:meth:`QueueBackend.orphans`, :meth:`QueueBackend.reclaim`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """One delivery of a queued value.

    ``id`` names the delivery: the publisher's message id, optionally followed by
    ``#`` and what tells two deliveries of that message apart (see :func:`message_id`).
    """

    id: str
    value: Any


def message_id(delivery: str) -> str:
    """The publisher's message id a delivery id (:attr:`Message.id`) carries."""
    return delivery.partition("#")[0]


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

    def orphans(self, queue: str, group: str) -> list[str]:
        """Ids of the messages of ``group`` received and not acknowledged by readers
        other than this backend, oldest first."""
        ...

    def reclaim(
        self, queue: str, group: str, consumed: Collection[str], give_back: bool = True
    ) -> int:
        """Settle the :meth:`orphans` of ``group``: acknowledge those whose message id
        is in ``consumed`` (their values are recorded elsewhere: a driver's journal)
        and, if ``give_back``, put the others back at the head of the group, oldest
        first. Returns how many went back.

        Give back only what no live reader holds: a job's own queues, once its
        driver took the job over (only that job reads them), never a shared one.
        """
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
