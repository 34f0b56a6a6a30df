"""Stream channels: the bounded, ordered pipe of one live edge.

A channel carries messages from one producing run to one consumer:
``("begin", attempt)`` (each start of the producer's run), ``("chunk", index,
value)``, ``("end",)`` and ``("failed", error, retry)``. It holds at most
``bound`` messages: a producer that gets ahead of its consumer waits
(backpressure) instead of growing memory. A consumer that stops reading
closes the channel, and the producer's next write says so: the runner then
closes the producer's generator.

:class:`MemoryStreamHub` serves runs in one process (the embedded engine's
thread and asyncio pools); :mod:`orchestrator.streams.redis_hub` carries
chunks between Celery workers, :mod:`orchestrator.streams.managed` between
process-pool children.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.streams.marker import job_of_channel

EMBEDDED_BOUND = 64
"""Messages a channel holds before its producer waits (embedded engine)."""
ENDED_KEPT = 10_000
"""Ended jobs a hub remembers, so a run of theirs that starts late fails at once."""
Message = tuple[Any, ...]


class StreamGone(Exception):
    """The channel's job ended (cancelled or finished) while a run still used it."""


class ChannelWriter(Protocol):
    """The producing run's end of a channel."""

    def put(self, message: Message) -> bool:
        """Send ``message``, waiting while the channel is full; ``False`` once the
        consumer closed it (the producer should stop)."""
        ...

    async def aput(self, message: Message) -> bool:
        """:meth:`put` for a coroutine."""
        ...


class ChannelReader(Protocol):
    """The consuming run's end of a channel."""

    def get(self) -> Message:
        """The next message, waiting for it; raises :class:`StreamGone`."""
        ...

    async def aget(self) -> Message:
        """:meth:`get` for a coroutine."""
        ...

    def close(self) -> None:
        """Stop reading: the producer's next write returns ``False``."""
        ...


class StreamHub(Protocol):
    """Where a runner finds the channels of its live edges."""

    def writer(self, key: str) -> ChannelWriter: ...
    def reader(self, key: str) -> ChannelReader: ...
    def end_job(self, job_id: str) -> None:
        """Drop the job's channels; runs still using them get :class:`StreamGone`."""
        ...


class _Channel:
    __slots__ = ("bound", "closed", "cond", "gone", "items", "readers", "writers")

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.items: deque[Message] = deque()
        self.cond = threading.Condition(threading.Lock())
        self.closed = False
        self.gone = False
        self.readers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.writers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    for loop, future in waiters:
        loop.call_soon_threadsafe(_resolve, future)
    waiters.clear()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryChannel:
    """Both ends of an in-process channel (thread-safe; async sides wait on futures)."""

    def __init__(self, channel: _Channel, on_close: Callable[[], None] | None = None) -> None:
        self._c = channel
        self._on_close = on_close

    # writer -------------------------------------------------------------------------
    def put(self, message: Message) -> bool:
        c = self._c
        with c.cond:
            while len(c.items) >= c.bound and not (c.closed or c.gone):
                c.cond.wait()
            if c.closed or c.gone:
                return False
            c.items.append(message)
            c.cond.notify_all()
            if c.readers:
                _wake(c.readers)
        return True

    async def aput(self, message: Message) -> bool:
        c = self._c
        while True:
            with c.cond:
                if c.closed or c.gone:
                    return False
                if len(c.items) < c.bound:
                    c.items.append(message)
                    c.cond.notify_all()
                    if c.readers:
                        _wake(c.readers)
                    return True
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                c.writers.append((loop, future))
            await future

    # reader -------------------------------------------------------------------------
    def get(self) -> Message:
        c = self._c
        with c.cond:
            while not c.items and not c.gone:
                c.cond.wait()
            if c.gone:
                raise StreamGone("the job ended while the stream was read")
            message = c.items.popleft()
            c.cond.notify_all()
            if c.writers:
                _wake(c.writers)
            return message

    async def aget(self) -> Message:
        c = self._c
        while True:
            with c.cond:
                if c.gone:
                    raise StreamGone("the job ended while the stream was read")
                if c.items:
                    message = c.items.popleft()
                    c.cond.notify_all()
                    if c.writers:
                        _wake(c.writers)
                    return message
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                c.readers.append((loop, future))
            await future

    def close(self) -> None:
        c = self._c
        with c.cond:
            c.closed = True
            c.items.clear()
            c.cond.notify_all()
            _wake(c.writers)
        if self._on_close is not None:
            self._on_close()


class MemoryStreamHub:
    """The channels of runs in one process.

    Args:
        bound: Messages a channel holds before its producer waits.
    """

    def __init__(self, bound: int = EMBEDDED_BOUND) -> None:
        self.bound = bound
        self._channels: dict[str, _Channel] = {}
        self._lock = threading.Lock()
        self._ended: dict[str, None] = {}  # the latest ended jobs, oldest first
        self.also_end: list[Callable[[str], None]] = []
        """Other hubs whose channels end with a job here (the process pool's)."""

    def _channel(self, key: str) -> _Channel:
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = _Channel(self.bound)
                if job_of_channel(key) in self._ended:  # a run that started late
                    channel.gone = True
                else:
                    self._channels[key] = channel
            return channel

    def writer(self, key: str) -> MemoryChannel:
        return MemoryChannel(self._channel(key))

    def reader(self, key: str) -> MemoryChannel:
        channel = self._channel(key)
        return MemoryChannel(channel, lambda: self._forget(key, channel))

    def _forget(self, key: str, channel: _Channel) -> None:
        """The consumer ended: the channel is dropped (its producer keeps its end)."""
        with self._lock:
            if self._channels.get(key) is channel:
                del self._channels[key]

    def end_job(self, job_id: str) -> None:
        with self._lock:
            self._ended[job_id] = None
            if len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
            keys = [k for k in self._channels if job_of_channel(k) == job_id]
            dropped = [self._channels.pop(k) for k in keys]
        for other in self.also_end:
            other(job_id)
        for c in dropped:
            with c.cond:
                c.gone = True
                c.cond.notify_all()
                _wake(c.readers)
                _wake(c.writers)

    def channels_of(self, job_id: str) -> list[str]:
        """The channels a job holds now (none once it ended)."""
        with self._lock:
            return [k for k in self._channels if job_of_channel(k) == job_id]
