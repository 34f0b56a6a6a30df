"""How each broker routes a queue's messages to its groups and remembers the groups.

Both routings keep one durable broker queue per (queue, group) and a holding
queue ``{prefix}.{queue}.__orphans__`` for messages published while a queue
has no group; the first group to subscribe drains it into itself.

Redis: kombu's Redis fanout uses PUBLISH and is not durable, so the groups of a
queue live in a Redis set and a publisher pushes one copy per group (each copy
its own delivery tag, which kombu's unacked bookkeeping is keyed by). Copies go
through kombu's default exchange straight to the list: a direct exchange on
kombu's Redis transport reads its whole binding set on every publish.
Dedupe is exact for sequential publishes: ``SET`` with a TTL after the publish.

AMQP: each queue has a durable fanout exchange ``{prefix}.{queue}`` whose
alternate exchange is the fanout ``{prefix}.{queue}.__orphans__``: a message
no group queue is bound to yet lands in the holding queue, atomically, in the
broker. Group queues are also bound to the direct exchange ``{prefix}`` (routing
key: their name), which is how orphans are moved into one group. The bindings
are the durable record of the groups, but AMQP 0-9-1 cannot list them, so
``groups``/``subscriptions`` (hence ``depth(queue)`` without a group,
``queues()`` and ``delete``) know the groups this backend instance subscribed
or received from. A registry kept as messages in a queue and read by get and
requeue was tried and dropped: a requeue is not visible at once, so
back-to-back reads saw partial lists. Dedupe is best effort: an in-process
memory of recent ids.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

import redis
from kombu import Exchange, Queue, binding
from kombu.transport import virtual

from orchestrator.broker import redis_client
from orchestrator.queues.kombu_names import HEADER_ID, QueueNames
from orchestrator.queues.kombu_session import BrokerSession

SEEN_MEMORY = 100_000
"""AMQP: how many recent message ids of this process are remembered for dedupe."""


class Routes(Protocol):
    """The broker-specific half of the kombu backend; called under the session lock."""

    def subscribe(self, queue: str, group: str) -> None: ...

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        """Route one message to every group; False (and nothing sent) for a repeated id."""
        ...

    def groups(self, queue: str) -> list[str]: ...

    def subscriptions(self) -> dict[str, list[str]]: ...

    def requeue(self, message: Any) -> None: ...

    def maintain(self) -> None: ...

    def recover(self) -> int: ...

    def delete(self, queue: str) -> None: ...

    def close(self) -> None: ...


def drain_orphans(session: BrokerSession, names: QueueNames, queue: str, into: list[str]) -> int:
    """Move the messages of ``queue``'s holding queue to the group queues ``into``."""
    moved, orphans = 0, names.orphans(queue)
    while (message := session.get(orphans)) is not None:
        message_id = str(message.headers.get(HEADER_ID, message.delivery_tag))
        for group in into:
            target = names.group_queue(queue, group)
            session.put(message.decode(), message_id, *route_to_queue(session, names, target))
        message.ack()  # after the copies: a crash in between duplicates, never loses
        moved += 1
    return moved


def route_to_queue(session: BrokerSession, names: QueueNames, target: str) -> tuple[str, str]:
    """(exchange, routing key) reaching exactly the broker queue ``target``."""
    return ("", target) if session.virtual else (names.exchange, target)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRoutes:
    """Groups in Redis sets, one copy per group; unacked messages come back by timeout."""

    def __init__(
        self,
        session: BrokerSession,
        names: QueueNames,
        url: str,
        dedupe_ttl_s: float,
        restore_every_s: float,
    ) -> None:
        self._session = session
        self._names = names
        # Its calls run inside the backend's retried calls: no retries of its own.
        self._redis: redis.Redis = redis_client(url, retries=0)
        self._ttl_ms = max(1, int(dedupe_ttl_s * 1000))
        self._restore_every_s = restore_every_s
        self._restored_at = float("-inf")

    def subscribe(self, queue: str, group: str) -> None:
        names = self._names
        pipe = self._redis.pipeline()
        pipe.sadd(names.groups_key(queue), group)
        pipe.sadd(names.queues_key, queue)
        pipe.execute()
        drain_orphans(self._session, names, queue, [group])

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        names, session = self._names, self._session
        seen = names.seen_key(queue, message_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(seen)
        pipe.smembers(names.groups_key(queue))
        repeated, members = pipe.execute()
        if repeated:
            return False
        groups = sorted(_text(g) for g in members)
        for group in groups:
            session.put(value, message_id, "", names.group_queue(queue, group))
        if not groups:
            session.put(value, message_id, "", names.orphans(queue))
            # A group may have subscribed (and drained) between the read and the push.
            late = self.groups(queue)
            if late:
                drain_orphans(session, names, queue, late)
        # Marked after the publish: a crash in between repeats the message, never loses it.
        self._redis.set(seen, b"1", px=self._ttl_ms)
        return True

    def groups(self, queue: str) -> list[str]:
        return sorted(_text(g) for g in self._redis.smembers(self._names.groups_key(queue)))

    def subscriptions(self) -> dict[str, list[str]]:
        queues = sorted(_text(q) for q in self._redis.smembers(self._names.queues_key))
        return {queue: self.groups(queue) for queue in queues}

    def requeue(self, message: Any) -> None:
        # kombu's reject(requeue=True) pushes to the tail of a Redis list; the
        # protocol puts unacknowledged messages back at the head.
        qos = message.channel.qos
        qos.restore_by_tag(message.delivery_tag, leftmost=False)
        virtual.QoS.ack(qos, message.delivery_tag)

    def maintain(self) -> None:
        """Bring back messages held past the visibility timeout by readers that died.

        kombu does this only inside a consumer's event loop; a ``basic_get``
        reader has none, so the backend sweeps here, at most every few seconds.
        """
        now = time.monotonic()
        if now - self._restored_at >= self._restore_every_s:
            self._restored_at = now
            self._session.channel().qos.restore_visible(num=None, interval=1)

    def recover(self) -> int:
        """Restore every unacknowledged message of the prefix now, oldest at the head."""
        index = self._names.transport_key("unacked_index")
        tags = [_text(tag) for tag in self._redis.zrange(index, 0, -1, desc=True)]
        qos = self._session.channel().qos
        for tag in tags:
            qos.restore_by_tag(tag)
        return len(tags)

    def delete(self, queue: str) -> None:
        names = self._names
        keys = [names.orphans(queue), names.groups_key(queue)]
        keys += [names.group_queue(queue, g) for g in self.groups(queue)]
        pipe = self._redis.pipeline()
        pipe.delete(*keys)
        pipe.srem(names.queues_key, queue)
        pipe.execute()

    def close(self) -> None:
        self._redis.close()


class AmqpRoutes:
    """A fanout exchange per queue with an orphans alternate exchange."""

    def __init__(self, session: BrokerSession, names: QueueNames) -> None:
        self._session = session
        self._names = names
        self._direct = Exchange(names.exchange, "direct", durable=True)
        self._declared: set[tuple[int, str]] = set()
        self._known: dict[str, set[str]] = {}
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _fanout(self, queue: str) -> Exchange:
        orphans = self._names.orphans(queue)
        return Exchange(
            self._names.fanout(queue),
            "fanout",
            durable=True,
            arguments={"alternate-exchange": orphans},
        )

    def _topology(self, queue: str) -> Exchange:
        """Declare (once per connection) the queue's fanout exchange and holding queue."""
        fanout = self._fanout(queue)
        key = (self._session.generation, queue)
        if key not in self._declared:
            channel = self._session.channel()
            orphans = self._names.orphans(queue)
            holding = Exchange(orphans, "fanout", durable=True)
            Queue(orphans, holding, durable=True).bind(channel).declare()
            fanout.bind(channel).declare()
            self._declared.add(key)
        return fanout

    def subscribe(self, queue: str, group: str) -> None:
        names, session = self._names, self._session
        fanout = self._topology(queue)
        name = names.group_queue(queue, group)
        direct = Queue(name, durable=True, bindings=[binding(self._direct, routing_key=name)])
        direct.bind(session.channel()).declare()
        # Drain into this group before and after binding it to the fanout, so
        # nothing published in between stays in the holding queue.
        drain_orphans(session, names, queue, [group])
        Queue(name, durable=True, bindings=[binding(fanout)]).bind(session.channel()).declare()
        drain_orphans(session, names, queue, [group])
        self._known.setdefault(queue, set()).add(group)

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        if (queue, message_id) in self._seen:
            return False
        self._session.put(value, message_id, self._topology(queue).name, "")
        self._seen[(queue, message_id)] = None
        while len(self._seen) > SEEN_MEMORY:
            self._seen.popitem(last=False)
        return True

    def groups(self, queue: str) -> list[str]:
        return sorted(self._known.get(queue, ()))

    def subscriptions(self) -> dict[str, list[str]]:
        return {queue: self.groups(queue) for queue in sorted(self._known)}

    def requeue(self, message: Any) -> None:
        message.reject(requeue=True)  # RabbitMQ puts it back at its old position

    def maintain(self) -> None:
        """Nothing to do: RabbitMQ requeues a dead reader's messages when its connection drops."""

    def recover(self) -> int:
        """Nothing to do: RabbitMQ already requeued what dead connections held."""
        return 0

    def delete(self, queue: str) -> None:
        channel = self._session.channel()
        for group in self.groups(queue):
            channel.queue_delete(self._names.group_queue(queue, group))
        channel.queue_delete(self._names.orphans(queue))
        channel.exchange_delete(self._names.fanout(queue))
        channel.exchange_delete(self._names.orphans(queue))
        self._known.pop(queue, None)
        self._declared = {key for key in self._declared if key[1] != queue}

    def close(self) -> None:
        """Nothing of its own to release."""
