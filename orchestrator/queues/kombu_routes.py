"""How each broker routes a queue's messages to its groups and remembers the groups.

Both routings keep one durable broker queue per (queue, group) and a holding
queue ``{prefix}.{queue}.__orphans__`` for messages published while a queue
has no group; the first group to subscribe drains it into itself.

Redis: kombu's Redis fanout uses PUBLISH and is not durable, so the groups of a
queue live in a Redis set and a publisher pushes one copy per group (each copy
its own delivery tag, which kombu's unacked bookkeeping is keyed by). Copies go
through kombu's default exchange straight to the list: a direct exchange on
kombu's Redis transport reads its whole binding set on every publish.
A publish is one watched transaction: the copies and the ``SET`` (with a TTL)
that marks the message id published commit together, so a publisher that dies
and publishes again on its restart neither loses nor doubles the message.

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
from collections.abc import Collection
from typing import Any, Protocol

import redis
from kombu import Exchange, Queue, binding, serialization
from kombu.transport import virtual
from kombu.utils import json

from orchestrator.broker import redis_client
from orchestrator.queues.kombu_names import HEADER_ID, QueueNames
from orchestrator.queues.kombu_session import PERSISTENT, BrokerSession

SEEN_MEMORY = 100_000
"""AMQP: how many recent message ids of this process are remembered for dedupe."""


class Routes(Protocol):
    """The broker-specific half of the kombu backend; called under the session lock."""

    def subscribe(self, queue: str, group: str) -> None: ...

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        """Route one message to every group; False (and nothing sent) for a repeated id."""
        ...

    def groups(self, queue: str) -> list[str]: ...

    def take(self, name: str) -> Any:
        """The next message of broker queue ``name``, held unacknowledged, or ``None``."""
        ...

    def subscriptions(self) -> dict[str, list[str]]: ...

    def requeue(self, message: Any) -> None: ...

    def maintain(self) -> None: ...

    def recover(self) -> int: ...

    def orphans(self, name: str, mine: set[str]) -> list[tuple[str, str]]:
        """(delivery tag, message id) of what readers other than this backend (whose
        delivery tags are ``mine``) received from broker queue ``name`` and did not
        acknowledge, oldest first."""
        ...

    def reclaim(self, name: str, mine: set[str], consumed: Collection[str], give_back: bool) -> int:
        """Acknowledge the orphans of ``name`` whose message id is in ``consumed``;
        give the others back at the head (oldest first) if ``give_back``."""
        ...

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


TAKE = """
local entry = redis.call('RPOP', KEYS[1])
if not entry then
  return false
end
local properties = cjson.decode(entry)['properties']
local tag, info = properties['delivery_tag'], properties['delivery_info']
local exchange, key = cjson.encode(info['exchange']), cjson.encode(info['routing_key'])
redis.call('ZADD', KEYS[2], ARGV[1], tag)
redis.call('HSET', KEYS[3], tag, '[' .. entry .. ',' .. exchange .. ',' .. key .. ']')
return entry
"""
"""Redis: pop a message and record it unacknowledged, as kombu's ``basic_get`` does
(``[payload, exchange, routing key]`` under its delivery tag), in one step."""


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
        self._take = self._redis.register_script(TAKE)

    def subscribe(self, queue: str, group: str) -> None:
        names = self._names
        pipe = self._redis.pipeline()
        pipe.sadd(names.groups_key(queue), group)
        pipe.sadd(names.queues_key, queue)
        pipe.execute()
        drain_orphans(self._session, names, queue, [group])

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        names = self._names
        seen, groups = names.seen_key(queue, message_id), names.groups_key(queue)

        fresh: list[bool] = []

        def push(pipe: Any) -> None:
            # Watched: a group subscribing meanwhile runs this again (it drains the
            # holding queue only once), and so does a publisher of the same id.
            fresh[:] = [not pipe.exists(seen)]
            if not fresh[0]:
                return
            members = sorted(_text(g) for g in pipe.smembers(groups))
            targets = [names.group_queue(queue, g) for g in members] or [names.orphans(queue)]
            entries = [self._entry(value, message_id, target) for target in targets]
            pipe.multi()
            for key, entry in entries:
                pipe.lpush(key, entry)
            pipe.set(seen, b"1", px=self._ttl_ms)

        self._redis.transaction(push, seen, groups)
        return fresh[0]

    def _entry(self, value: Any, message_id: str, target: str) -> tuple[str, str]:
        """(Redis list, entry): what kombu's publish of ``value`` to queue ``target``
        pushes (each copy with a delivery tag of its own)."""
        channel = self._session.channel()
        content_type, content_encoding, body = serialization.dumps(value, serializer="json")
        message = channel.prepare_message(
            body,
            0,
            content_type,
            content_encoding,
            {HEADER_ID: message_id},
            {"delivery_mode": PERSISTENT},
        )
        channel._inplace_augment_message(message, "", target)
        key = channel._q_for_pri(target, channel._get_message_priority(message, reverse=False))
        return key, json.dumps(message)

    def groups(self, queue: str) -> list[str]:
        return sorted(_text(g) for g in self._redis.smembers(self._names.groups_key(queue)))

    def take(self, name: str) -> Any:
        """kombu's ``basic_get`` pops the message, then records it unacknowledged: a
        reader dying in between would lose it. Here both are one script; the
        message is then handed to kombu's bookkeeping as ``basic_get`` would."""
        names = self._names
        keys = [name, names.transport_key("unacked_index"), names.transport_key("unacked")]
        entry = self._take(keys=keys, args=[time.time()])  # one list per queue: priority_steps [0]
        if entry is None:
            return None
        channel = self._session.channel()
        message = channel.Message(json.loads(_text(entry)), channel=channel)
        virtual.QoS.append(channel.qos, message, message.delivery_tag)  # its in-memory half
        message.accept = serialization.prepare_accept_content(["json"])
        return message

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

    def orphans(self, name: str, mine: set[str]) -> list[tuple[str, str]]:
        names = self._names
        tags = [_text(t) for t in self._redis.zrange(names.transport_key("unacked_index"), 0, -1)]
        tags = [t for t in tags if t not in mine]
        if not tags:
            return []
        found = []
        payloads = self._redis.hmget(names.transport_key("unacked"), tags)
        for tag, payload in zip(tags, payloads, strict=True):
            if payload is None:
                continue  # acknowledged or given back since the index was read
            message, _exchange, routing_key = json.loads(_text(payload))
            if routing_key == name:
                found.append((tag, str((message.get("headers") or {}).get(HEADER_ID, tag))))
        return found

    def reclaim(self, name: str, mine: set[str], consumed: Collection[str], give_back: bool) -> int:
        names = self._names
        qos = self._session.channel().qos
        back = 0
        for tag, message_id in reversed(self.orphans(name, mine)):  # the oldest ends at the head
            if message_id in consumed:
                pipe = self._redis.pipeline()
                pipe.zrem(names.transport_key("unacked_index"), tag)
                pipe.hdel(names.transport_key("unacked"), tag)
                pipe.execute()
            elif give_back:
                qos.restore_by_tag(tag)
                back += 1
        return back

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

    def take(self, name: str) -> Any:
        """RabbitMQ holds a message it delivers until it is acknowledged."""
        return self._session.get(name)

    def subscriptions(self) -> dict[str, list[str]]:
        return {queue: self.groups(queue) for queue in sorted(self._known)}

    def requeue(self, message: Any) -> None:
        message.reject(requeue=True)  # RabbitMQ puts it back at its old position

    def maintain(self) -> None:
        """Nothing to do: RabbitMQ requeues a dead reader's messages when its connection drops."""

    def recover(self) -> int:
        """Nothing to do: RabbitMQ already requeued what dead connections held."""
        return 0

    def orphans(self, name: str, mine: set[str]) -> list[tuple[str, str]]:
        """None: RabbitMQ requeues what a connection held as soon as it drops."""
        return []

    def reclaim(self, name: str, mine: set[str], consumed: Collection[str], give_back: bool) -> int:
        """Nothing to settle (see :meth:`orphans`)."""
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
