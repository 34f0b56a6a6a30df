"""The broker-backed queue backend (DESIGN 3.5) on kombu: Redis or RabbitMQ.

Layout (see :mod:`orchestrator.queues.kombu_names`): one durable broker queue
``{prefix}.{queue}.{group}`` per subscription, a holding queue
``{prefix}.{queue}.__orphans__`` for messages published before any group, and
the groups of every queue recorded in the broker (a Redis set, or the bindings
of an AMQP fanout exchange; see :mod:`orchestrator.queues.kombu_routes`), so a
publisher in another process, or after a restart, reaches every group. On
AMQP, ``queues()`` and ``depth(queue)`` without a group cover only the groups
this instance subscribed (AMQP cannot list bindings).

Delivery is at-least-once. A received message stays unacknowledged in the
broker until :meth:`KombuQueueBackend.ack`, which must be called on the backend
instance that received it (the broker ties an acknowledgement to the channel).
When the process holding it dies, the message comes back:

* RabbitMQ requeues it as soon as the connection drops. RabbitMQ also closes
  a channel holding a delivery unacknowledged past its ``consumer_timeout``
  (30 min by default), requeueing everything the backend holds: that setting
  must outlast the longest iteration.
* Redis keeps it in ``{prefix}:unacked`` and restores it once it is older than
  ``visibility_timeout_s``. kombu restores only when a channel is used: here
  every ``receive`` sweeps, at most every ``min(5 s, visibility_timeout_s / 4)``
  (``unacked_restore_limit`` is unset: a sweep restores all it finds). A live
  reader that holds a message longer than the timeout gets it duplicated, so
  the timeout must outlast the longest iteration (DESIGN 10), and every backend
  of one prefix must use the same timeout (the shortest wins).
  :meth:`KombuQueueBackend.recover` restores at once, for a restarting sole reader.
  A driver taking a job over does better (:mod:`orchestrator.driver.orphans`):
  it lists what readers gone held of the job's groups (:meth:`~KombuQueueBackend.orphans`)
  and, knowing from its journal which of those were consumed, acknowledges
  those and gives the others back, oldest first (:meth:`~KombuQueueBackend.reclaim`).

Values travel as JSON (kombu's ``json`` serializer), persistent; on AMQP every
publish waits for the broker's confirm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from kombu.exceptions import EncodeError

from orchestrator.broker import AMQP_SCHEMES, REDIS_SCHEMES, redact, retry_call, scheme
from orchestrator.outage import watch
from orchestrator.queues.base import Message
from orchestrator.queues.kombu_names import HEADER_ID, QueueNames, check_group
from orchestrator.queues.kombu_routes import AmqpRoutes, RedisRoutes, Routes
from orchestrator.queues.kombu_session import BrokerSession

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_FIRST_S = 0.002
"""The first wait of an empty ``receive``; it doubles up to ``poll_max_s``."""
DEDUPE_TTL_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class _Held:
    queue: str
    group: str
    message: Any  # the kombu message, acknowledged on the channel that got it


class KombuQueueBackend:
    """Durable broadcast queues with competing readers on Redis or RabbitMQ.

    Args:
        url: ``redis://host:port/db`` or ``amqp://user:password@host:port/vhost``.
        prefix: Prefix of every broker name and Redis key of this backend.
        visibility_timeout_s: Redis: how long a received message may stay
            unacknowledged before it is given to another reader.
        dedupe_ttl_s: Redis: how long a published ``message_id`` is remembered.
        poll_max_s: The longest sleep between two polls of an empty queue.

    Thread safety: one connection per backend, every broker call under one lock
    (see :mod:`orchestrator.queues.kombu_session`).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "segue.q",
        visibility_timeout_s: float = 3600.0,
        *,
        dedupe_ttl_s: float = DEDUPE_TTL_S,
        poll_max_s: float = 0.05,
    ) -> None:
        kind = scheme(url)
        if kind not in REDIS_SCHEMES | AMQP_SCHEMES:
            raise ValueError(
                f"queue backend URL {url!r}: use redis://host:port/db or amqp://host:port/vhost"
            )
        if visibility_timeout_s <= 0:
            raise ValueError(f"visibility_timeout_s must be positive, got {visibility_timeout_s}")
        names = self._names = QueueNames(prefix)
        self._outage = watch(f"the broker at {redact(url)}", logging.getLogger("segue.broker"))
        self._poll_max_s = max(poll_max_s, POLL_FIRST_S)
        self._held: dict[str, _Held] = {}
        self._subscribed: set[tuple[str, str]] = set()
        self._routes: Routes
        if kind in REDIS_SCHEMES:
            options = {
                "visibility_timeout": visibility_timeout_s,
                "unacked_key": names.transport_key("unacked"),
                "unacked_index_key": names.transport_key("unacked_index"),
                "unacked_mutex_key": names.transport_key("unacked_mutex"),
                "priority_steps": [0],  # one list per queue: one RPOP per poll
            }
            self._session = BrokerSession(url, options, virtual=True)
            every = min(5.0, visibility_timeout_s / 4)
            self._routes = RedisRoutes(self._session, names, url, dedupe_ttl_s, every)
        else:
            self._session = BrokerSession(url, {"confirm_publish": True}, virtual=False)
            self._routes = AmqpRoutes(self._session, names)

    def subscribe(self, queue: str, group: str) -> None:
        check_group(queue, group)
        with self._session.lock:
            if (queue, group) not in self._subscribed:
                self._call(lambda: self._routes.subscribe(queue, group))
                self._subscribed.add((queue, group))

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        try:
            return self._call(lambda: self._routes.publish(queue, value, message_id))
        except EncodeError as exc:
            raise TypeError(
                f"queue {queue!r}: message {message_id!r} is not JSON-serialisable ({exc}); "
                "queue values must be JSON (or artifact references)"
            ) from exc

    def receive(self, queue: str, group: str, timeout_s: float) -> Message | None:
        self.subscribe(queue, group)
        name = self._names.group_queue(queue, group)
        deadline = time.monotonic() + timeout_s
        pause = POLL_FIRST_S
        while True:
            message = self._call(lambda: self._take(queue, group, name))
            if message is not None:
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(pause, left))
            pause = min(pause * 2, self._poll_max_s)

    def ack(self, queue: str, group: str, message_id: str) -> None:
        with self._session.lock:
            held = self._held.pop(message_id, None)
            if held is None:
                return
            try:
                held.message.ack()
            except self._session.errors:
                # The delivery died with its connection; the broker redelivers it.
                log.warning("queue %r group %r: ack of %s failed", queue, group, message_id)
                self._reset()

    def requeue_unacked(self, queue: str, group: str) -> int:
        with self._session.lock:
            ids = [key for key, h in self._held.items() if (h.queue, h.group) == (queue, group)]
            for key in reversed(ids):  # last first, so the first ends up at the head
                self._routes.requeue(self._held.pop(key).message)
            return len(ids)

    def orphans(self, queue: str, group: str) -> list[str]:
        name = self._names.group_queue(queue, group)
        with self._session.lock:
            mine = self._mine()
            return [mid for _, mid in self._call(lambda: self._routes.orphans(name, mine))]

    def reclaim(
        self, queue: str, group: str, consumed: Collection[str], give_back: bool = True
    ) -> int:
        name = self._names.group_queue(queue, group)
        with self._session.lock:
            mine = self._mine()
            return self._call(lambda: self._routes.reclaim(name, mine, consumed, give_back))

    def depth(self, queue: str, group: str | None = None) -> int:
        names = self._names

        def depth() -> int:
            if group is not None:
                return self._count(names.group_queue(queue, group))
            groups = self._routes.groups(queue)
            if not groups:
                return self._count(names.orphans(queue))
            return max(self._count(names.group_queue(queue, g)) for g in groups)

        return self._call(depth)

    def probe(self) -> None:
        """Open the broker channel now: a broker that refuses us (a wrong URL, database
        or password) says so here rather than at the first queue node's run."""
        with self._session.lock:
            self._call(self._session.channel)

    def queues(self) -> dict[str, dict[str, int]]:
        names = self._names

        def listing() -> dict[str, dict[str, int]]:
            return {
                queue: {g: self._count(names.group_queue(queue, g)) for g in groups}
                for queue, groups in self._routes.subscriptions().items()
            }

        return self._call(listing)

    def recover(self) -> int:
        """Give back, now, every message that readers of this prefix hold unacknowledged.

        Redis only holds a dead reader's messages until the visibility timeout;
        a coordinator that is the sole reader of its queues calls this when it
        starts, before receiving, so a restart does not wait that long. Never
        call it while another live process may be holding messages: they would
        be delivered twice, and so would messages whose iteration a driver's
        journal already holds (a coordinator therefore settles what a dead
        driver held when it takes its jobs over: :meth:`reclaim`). On RabbitMQ
        there is nothing to do (returns 0). Not part of
        :class:`~orchestrator.queues.base.QueueBackend`.

        Returns:
            How many messages went back to their queues.
        """
        with self._session.lock:
            self._held.clear()
            return self._call(self._routes.recover)

    def delete(self, queue: str) -> None:
        """Remove ``queue`` from the broker: its groups, messages and records
        (the engine deletes a job's job-scoped queues when the job ends)."""
        with self._session.lock:
            for key in [k for k, h in self._held.items() if h.queue == queue]:
                self._held.pop(key).message.ack()  # else closing would restore it
            self._call(lambda: self._routes.delete(queue))
            self._subscribed = {s for s in self._subscribed if s[0] != queue}

    def close(self) -> None:
        """Release the connection; unacknowledged messages go back to their queues."""
        with self._session.lock:
            if self._session.closed:
                return
            self._held.clear()
            self._routes.close()
            self._session.close()

    def __enter__(self) -> KombuQueueBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _take(self, queue: str, group: str, name: str) -> Message | None:
        self._routes.maintain()
        raw = self._routes.take(name)
        if raw is None:
            return None
        try:
            value = raw.decode()
        except Exception:
            # A message that can never decode would come back forever; drop it loudly.
            log.exception("queue %r group %r: dropping an undecodable message", queue, group)
            raw.reject(requeue=False)
            return None
        message_id = str(raw.headers.get(HEADER_ID, raw.delivery_tag))
        delivery = f"{message_id}#{self._session.generation}.{raw.delivery_tag}"
        self._held[delivery] = _Held(queue, group, raw)
        return Message(delivery, value)

    def _mine(self) -> set[str]:
        """The broker's delivery tags of the messages this backend holds."""
        return {str(h.message.delivery_tag) for h in self._held.values()}

    def _count(self, name: str) -> int:
        return self._session.count(name) or 0

    def _call(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` under the lock; after a broker error, reconnect and retry
        per the broker retry policy (:func:`orchestrator.broker.retry_call`)."""
        with self._session.lock:
            result = retry_call(operation, self._session.errors, self._reconnect)
        self._outage.ok()
        return result

    def _reconnect(self, error: BaseException) -> None:
        self._outage.failed(error, "using the queues of queue nodes")  # logged once per outage
        self._reset()

    def _reset(self) -> None:
        self._held.clear()  # those deliveries died with the connection
        self._session.reset()
