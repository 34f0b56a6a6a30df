"""The coordinator's queues in process memory: a broker for tests and services-free runs.

The semantics are those of the Redis streams: a job's results queue exists
once a coordinator follows the job (a result for a queue that does not exist
is dropped), keeps each result until it is released as done, and gives every
follower everything still in it; a wake-up reaches every consumer started
before it. Messages are stored as JSON text and decoded for each delivery,
as a real broker would, so a value that would not survive the wire fails here
too, and no two readers share a mutable body.

Channels opened on the same ``memory://name`` URL in one process share one
broker (as kombu's memory transport does); the broker lives as long as some
transport holds it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import weakref
from collections import deque
from typing import ClassVar

from orchestrator.channels.base import Body, ControlHandler, Delivery, ResultsHandler, decode

MEMORY_SCHEME = "memory"
BATCH = 500
"""Results delivered per queue and handler call."""


class MemoryBroker:
    """Results queues and wake-up subscribers, behind one condition variable."""

    _named: ClassVar[weakref.WeakValueDictionary[str, MemoryBroker]] = weakref.WeakValueDictionary()
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.queues: dict[str, dict[int, str]] = {}  # queue -> entry id -> JSON text
        self.subscribers: dict[str, list[deque[str]]] = {}  # control queue -> inboxes
        self._ids = itertools.count(1)

    @classmethod
    def named(cls, url: str) -> MemoryBroker:
        """The broker of ``url`` in this process, made on first use."""
        with cls._named_lock:
            broker = cls._named.get(url)
            if broker is None:
                broker = cls._named[url] = cls()
            return broker

    def append(self, queue: str, text: str) -> None:
        """Add an entry to ``queue`` if it exists (call with :attr:`changed` held)."""
        entries = self.queues.get(queue)
        if entries is not None:
            entries[next(self._ids)] = text
            self.changed.notify_all()


class MemoryTransport:
    """One connection to a :class:`MemoryBroker`: a publisher and, once
    :meth:`consume` is called, a consumer."""

    def __init__(self, broker: MemoryBroker, control: str) -> None:
        self.broker = broker
        self.control = control
        self._on_results: ResultsHandler | None = None
        self._on_control: ControlHandler | None = None
        self._inbox: deque[str] | None = None
        self._positions: dict[str, int] = {}  # followed queue -> last entry id read
        self._jobs: dict[str, str] = {}  # followed queue -> job id
        self._done: list[tuple[str, list[object]]] = []
        self._done_lock = threading.Lock()

    @classmethod
    def shared(cls, url: str, control: str) -> MemoryTransport:
        """A transport on the broker every ``url`` of this process shares."""
        return cls(MemoryBroker.named(url), control)

    def transient(self, error: BaseException) -> bool:
        return False  # process memory does not go away

    def publish_result(self, queue: str, body: Body) -> None:
        text = _dumps(body)
        with self.broker.changed:
            self.broker.append(queue, text)

    def publish_control(self, body: Body) -> None:
        text = _dumps(body)
        with self.broker.changed:
            for inbox in self.broker.subscribers.get(self.control, ()):
                inbox.append(text)
            self.broker.changed.notify_all()

    def consume(self, on_results: ResultsHandler, on_control: ControlHandler) -> None:
        self._on_results, self._on_control = on_results, on_control
        with self.broker.changed:
            if self._inbox is None:  # wake-ups from now on
                self._inbox = deque()
                self.broker.subscribers.setdefault(self.control, []).append(self._inbox)

    def follow(self, job_id: str, queue: str) -> list[Delivery]:
        if queue in self._positions:
            return []
        with self.broker.changed:
            entries = self.broker.queues.setdefault(queue, {})
            backlog: list[Delivery] = []
            for entry, text in list(entries.items()):
                body = decode(text, queue)
                if body is None:
                    entries.pop(entry)
                else:
                    backlog.append((body, entry))
            self._positions[queue] = next(reversed(entries), 0)
        self._jobs[queue] = job_id
        return backlog

    def forget(self, queue: str, delete: bool) -> None:
        self.release()  # what was journaled goes first; the rest stays for the next reader
        self._positions.pop(queue, None)
        self._jobs.pop(queue, None)
        if delete:
            with self.broker.changed:
                self.broker.queues.pop(queue, None)

    def done(self, queue: str, tokens: list[object]) -> None:
        with self._done_lock:
            self._done.append((queue, tokens))

    def release(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        if not done:
            return
        with self.broker.changed:
            for queue, tokens in done:
                entries = self.broker.queues.get(queue)
                if entries is not None:
                    for token in tokens:
                        if isinstance(token, int):
                            entries.pop(token, None)

    def drain(self, timeout: float) -> int:
        on_results, on_control = self._on_results, self._on_control
        if on_results is None or on_control is None or self._inbox is None:
            raise RuntimeError("call consume() before drain()")
        self.release()
        deadline = time.monotonic() + timeout
        with self.broker.changed:
            while True:
                controls, results = self._take()
                left = deadline - time.monotonic()
                if controls or results or left <= 0:
                    break
                self.broker.changed.wait(left)
        # The handlers run outside the broker's lock: they may publish or release.
        for text in controls:
            if (body := decode(text, self.control)) is not None:
                on_control(body)
        for queue, entries in results.items():
            if queue in self._jobs:  # not forgotten by a handler meanwhile
                deliveries: list[Delivery] = []
                for entry, text in entries:
                    body = decode(text, queue)
                    if body is None:
                        self.done(queue, [entry])  # dropped: off the queue at the next release
                    else:
                        deliveries.append((body, entry))
                if deliveries:
                    on_results(self._jobs[queue], deliveries)
        return len(controls) + sum(len(entries) for entries in results.values())

    def _take(self) -> tuple[list[str], dict[str, list[tuple[int, str]]]]:
        """Wake-ups and new results waiting for this consumer (the lock is held)."""
        assert self._inbox is not None
        controls = list(self._inbox)
        self._inbox.clear()
        results: dict[str, list[tuple[int, str]]] = {}
        for queue, position in self._positions.items():
            entries = self.broker.queues.get(queue, {})
            unread = ((i, t) for i, t in entries.items() if i > position)
            fresh = list(itertools.islice(unread, BATCH))
            if fresh:
                results[queue] = fresh
                self._positions[queue] = fresh[-1][0]
        return controls, results

    def depth(self, queues: list[str]) -> dict[str, int]:
        with self.broker.changed:
            return {queue: len(self.broker.queues.get(queue, ())) for queue in queues}

    def close(self) -> None:
        with self.broker.changed:
            inboxes = self.broker.subscribers.get(self.control, [])
            if self._inbox is not None and any(i is self._inbox for i in inboxes):
                inboxes[:] = [i for i in inboxes if i is not self._inbox]
        self._inbox = None
        self._on_results = self._on_control = None
        self._positions.clear()
        self._jobs.clear()


def _dumps(body: Body) -> str:
    return json.dumps(body, separators=(",", ":"))
