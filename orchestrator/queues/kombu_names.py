"""Every broker name and Redis key of the kombu queue backend, in one place.

Broker entities (queues, exchanges) are dotted: ``{prefix}.{queue}.{group}``.
Redis keys of the backend's own bookkeeping use a colon after the prefix
(``{prefix}:groups:{queue}``) so that they can never collide with the Redis
lists kombu keeps under the dotted queue names. A ``.`` or ``%`` inside a queue
or group name is percent-encoded so that ``("a.b", "c")`` and ``("a", "b.c")``
stay apart; plain names appear as written.
"""

from __future__ import annotations

from dataclasses import dataclass

ORPHANS = "__orphans__"
"""The group-queue suffix of messages published while a queue had no group."""

HEADER_ID = "segue-message-id"
"""The message header carrying the publisher's ``message_id``."""


def _part(name: str) -> str:
    return name.replace("%", "%25").replace(".", "%2E")


def check_group(queue: str, group: str) -> None:
    """Refuse group names the backend reserves for itself."""
    if not group:
        raise ValueError(f"queue {queue!r}: a group name must not be empty")
    if group == ORPHANS:
        raise ValueError(f"queue {queue!r}: the group name {ORPHANS!r} is reserved; rename it")


@dataclass(frozen=True)
class QueueNames:
    """The names of one backend ``prefix``."""

    prefix: str

    @property
    def exchange(self) -> str:
        """The durable direct exchange every group queue is bound to (routing key: its name)."""
        return self.prefix

    def group_queue(self, queue: str, group: str) -> str:
        """The broker queue holding the messages of ``group``."""
        return f"{self.prefix}.{_part(queue)}.{_part(group)}"

    def orphans(self, queue: str) -> str:
        """The broker queue (and, on AMQP, fanout exchange) of messages with no group yet."""
        return f"{self.prefix}.{_part(queue)}.{ORPHANS}"

    def fanout(self, queue: str) -> str:
        """AMQP: the fanout exchange of ``queue``; every group queue is bound to it."""
        return f"{self.prefix}.{_part(queue)}"

    @property
    def queues_key(self) -> str:
        """Redis: the set of queue names that have at least one group."""
        return f"{self.prefix}:queues"

    def groups_key(self, queue: str) -> str:
        """Redis: the set of groups of ``queue``."""
        return f"{self.prefix}:groups:{queue}"

    def seen_key(self, queue: str, message_id: str) -> str:
        """Redis: marks ``message_id`` as published to ``queue`` (expires)."""
        return f"{self.prefix}:seen:{queue}:{message_id}"

    def transport_key(self, name: str) -> str:
        """Redis: kombu's own bookkeeping keys (``unacked`` etc.), kept apart from Celery's."""
        return f"{self.prefix}:{name}"
