"""An in-process queue backend for embedded mode and tests."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Collection
from typing import Any

from orchestrator.queues.base import Message


class _Group:
    __slots__ = ("ready", "unacked")

    def __init__(self) -> None:
        self.ready: deque[Message] = deque()
        self.unacked: OrderedDict[str, Message] = OrderedDict()


class MemoryQueueBackend:
    """Queues in process memory: broadcast to groups, competing readers within one.

    Messages published while a queue has no subscription wait for the first
    group that subscribes, so a reader that starts late loses nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._groups: dict[str, dict[str, _Group]] = {}
        self._orphans: dict[str, deque[Message]] = {}
        self._seen: dict[str, set[str]] = {}

    def subscribe(self, queue: str, group: str) -> None:
        with self._lock:
            groups = self._groups.setdefault(queue, {})
            if group not in groups:
                state = groups[group] = _Group()
                state.ready.extend(self._orphans.pop(queue, ()))

    def publish(self, queue: str, value: Any, message_id: str) -> bool:
        with self._lock:
            seen = self._seen.setdefault(queue, set())
            if message_id in seen:
                return False
            seen.add(message_id)
            message = Message(message_id, value)
            groups = self._groups.get(queue)
            if not groups:
                self._orphans.setdefault(queue, deque()).append(message)
            else:
                for state in groups.values():
                    state.ready.append(message)
            self._lock.notify_all()
            return True

    def receive(self, queue: str, group: str, timeout_s: float) -> Message | None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self.subscribe(queue, group)
            state = self._groups[queue][group]
            while not state.ready:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)
            message = state.ready.popleft()
            state.unacked[message.id] = message
            return message

    def ack(self, queue: str, group: str, message_id: str) -> None:
        with self._lock:
            state = self._groups.get(queue, {}).get(group)
            if state is not None:
                state.unacked.pop(message_id, None)

    def requeue_unacked(self, queue: str, group: str) -> int:
        with self._lock:
            state = self._groups.get(queue, {}).get(group)
            if state is None or not state.unacked:
                return 0
            pending = list(state.unacked.values())
            state.unacked.clear()
            state.ready.extendleft(reversed(pending))
            self._lock.notify_all()
            return len(pending)

    def orphans(self, queue: str, group: str) -> list[str]:
        """Nothing: every reader of an in-process backend is this process."""
        return []

    def reclaim(
        self, queue: str, group: str, consumed: Collection[str], give_back: bool = True
    ) -> int:
        """Nothing to settle (see :meth:`orphans`)."""
        return 0

    def depth(self, queue: str, group: str | None = None) -> int:
        with self._lock:
            groups = self._groups.get(queue, {})
            if group is not None:
                state = groups.get(group)
                return len(state.ready) if state else 0
            orphans = len(self._orphans.get(queue, ()))
            return max((len(s.ready) for s in groups.values()), default=orphans)

    def queues(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {q: {g: len(s.ready) for g, s in gs.items()} for q, gs in self._groups.items()}

    def delete(self, queue: str) -> None:
        with self._lock:
            self._groups.pop(queue, None)
            self._orphans.pop(queue, None)
            self._seen.pop(queue, None)
