"""Stream channels between Celery workers: a Redis stream per live edge.

Each channel is a Redis stream ``segue:stream:{channel}`` (XADD by the
producing worker, XREAD by the consuming one), so chunks pass through the
broker, never through the store. The consumer reports how many messages it
has taken (``segue:stream-ack:{channel}``) before each read; a producer
``CLUSTER_BOUND`` messages ahead of that waits (backpressure). A consumer that
stops sets ``segue:stream-closed:{channel}``, which the producer's next write
reads. When the job ends the coordinator deletes its channels (listed in
``segue:streams:{job}``) and marks the job ended, so a run still reading
fails instead of waiting.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from typing import Any

import redis

from nodes.errors import FatalNodeError
from orchestrator.streams.channels import Message, StreamGone
from orchestrator.streams.marker import job_of_channel

CLUSTER_BOUND = 128
"""Messages a producer may be ahead of its consumer (Celery mode)."""
READ_BLOCK_MS = 1000
WAIT_S = 0.0005
KEEP_S = 24 * 3600  # a channel outlives no job by more (should its coordinator die)


def _stream(key: str) -> str:
    return f"segue:stream:{key}"


def _ack(key: str) -> str:
    return f"segue:stream-ack:{key}"


def _closed(key: str) -> str:
    return f"segue:stream-closed:{key}"


def _registry(job: str) -> str:
    return f"segue:streams:{job}"


def _ended(job: str) -> str:
    return f"segue:streams-ended:{job}"


class RedisWriter:
    """The producing run's end of a Redis channel.

    ``put`` queues a message and returns; a flushing thread sends what is
    queued in one pipeline (so a fast producer's chunks go out in batches,
    a slow one's at once) and reads back the consumer's progress and whether
    it closed. ``put`` waits while the producer is ``bound`` messages ahead of
    the consumer; the last message (``end``, ``failed``) returns once sent.
    """

    def __init__(self, client: redis.Redis, key: str, bound: int) -> None:
        self._r = client
        self._key = key
        self._bound = bound
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._written = 0  # messages queued
        self._sent = 0  # messages on the stream
        self._acked = 0  # messages the consumer has taken
        self._stopped = False  # the consumer closed, or the job ended
        self._flusher: threading.Thread | None = None
        self._final = False  # the last message (end, failed) is queued

    def put(self, message: Message) -> bool:
        final = message[0] in ("end", "failed")
        with self._cond:
            while self._written - self._acked >= self._bound and not self._stopped:
                self._cond.wait(READ_BLOCK_MS / 1000)
            if self._stopped:
                return False
            self._pending.append(json.dumps(message))
            self._written += 1
            self._final = final
            if self._flusher is None:
                # a run that starts after its consumer or job ended stops at once
                closed, ended = self._r.mget(_closed(self._key), _ended(job_of_channel(self._key)))
                if closed is not None or ended is not None:
                    self._stopped = True
                    self._pending.clear()
                    return False
                self._flusher = threading.Thread(
                    target=self._flush, name="segue-stream-flush", daemon=True
                )
                self._flusher.start()
            self._cond.notify_all()
            if final:  # sent before the run reports its end
                while self._sent < self._written and not self._stopped:
                    self._cond.wait(READ_BLOCK_MS / 1000)
            return not self._stopped

    async def aput(self, message: Message) -> bool:
        if self._written - self._acked < self._bound and message[0] == "chunk":
            return self.put(message)  # room: queued without waiting
        return await asyncio.to_thread(self.put, message)

    def _flush(self) -> None:
        r, key = self._r, self._key
        job = job_of_channel(key)
        first = True
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    if self._written - self._acked >= self._bound:
                        break  # blocked: poll the consumer's progress
                    if self._sent == self._written and self._final:
                        return  # the stream ended and all of it is sent
                    self._cond.wait(READ_BLOCK_MS / 1000)
                if self._stopped:
                    return
                batch, self._pending = self._pending, []
            pipe = r.pipeline(transaction=False)
            if first and batch:
                pipe.sadd(_registry(job), key)
                pipe.expire(_registry(job), KEEP_S)
            for item in batch:
                pipe.xadd(_stream(key), {"m": item})
            if first and batch:
                pipe.expire(_stream(key), KEEP_S)
                first = False
            pipe.mget(_ack(key), _closed(key), _ended(job))
            ack, closed, ended = pipe.execute()[-1]
            with self._cond:
                self._sent += len(batch)
                self._acked = max(self._acked, int(ack or 0))
                self._stopped = closed is not None or ended is not None
                self._cond.notify_all()
            if not batch:
                time.sleep(WAIT_S)


class RedisReader:
    """The consuming run's end of a Redis channel."""

    def __init__(self, client: redis.Redis, key: str, bound: int) -> None:
        self._r = client
        self._key = key
        self._bound = bound
        self._last = "0-0"
        self._taken = 0
        self._acked = 0
        self._buffer: deque[Message] = deque()

    def get(self) -> Message:
        while not self._buffer:
            self._read()
        self._taken += 1
        if self._taken - self._acked >= self._bound // 4:  # the producer may go on
            self._acked = self._taken
            self._r.set(_ack(self._key), self._taken, ex=KEEP_S)
        return self._buffer.popleft()

    def _read(self) -> None:
        r, key = self._r, self._key
        pipe = r.pipeline(transaction=False)
        self._acked = self._taken
        pipe.set(_ack(key), self._taken, ex=KEEP_S)
        pipe.xread({_stream(key): self._last}, count=self._bound, block=READ_BLOCK_MS)
        replies = pipe.execute()
        entries = replies[-1]
        if not entries:
            if r.exists(_ended(job_of_channel(key))):
                raise StreamGone("the job ended while the stream was read")
            return
        for entry_id, fields in entries[0][1]:
            self._last = entry_id
            self._buffer.append(tuple(json.loads(fields[b"m"])))

    async def aget(self) -> Message:
        if self._buffer:
            return self.get()  # read already: no wait
        return await asyncio.to_thread(self.get)

    def close(self) -> None:
        """Stop reading: the producer stops at its next write; the stream is deleted."""
        key = self._key
        pipe = self._r.pipeline(transaction=False)
        pipe.set(_closed(key), 1, ex=KEEP_S)
        pipe.delete(_stream(key), _ack(key))
        pipe.execute()


class RedisStreamHub:
    """Channels as Redis streams on the broker.

    Args:
        url: The Redis broker URL.
        bound: Messages a producer may be ahead of its consumer.
    """

    def __init__(self, url: str, bound: int = CLUSTER_BOUND) -> None:
        self._r = redis.Redis.from_url(url)
        self.bound = bound

    def writer(self, key: str) -> RedisWriter:
        return RedisWriter(self._r, key, self.bound)

    def reader(self, key: str) -> RedisReader:
        return RedisReader(self._r, key, self.bound)

    def end_job(self, job_id: str) -> None:
        r = self._r
        registry = _registry(job_id)
        members: Any = r.smembers(registry)
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in members]
        pipe = r.pipeline(transaction=False)
        pipe.set(_ended(job_id), 1, ex=KEEP_S)
        for key in keys:
            pipe.delete(_stream(key), _ack(key), _closed(key))
        pipe.delete(registry)
        pipe.execute()

    def channels_of(self, job_id: str) -> list[str]:
        """The Redis keys a job's channels use now (none once it ended)."""
        keys: list[Any] = self._r.keys(f"segue:stream*:{job_id}:*")
        return [k.decode() if isinstance(k, bytes) else str(k) for k in keys]


class NoStreamTransport:
    """The hub of a deployment whose broker cannot carry chunks (RabbitMQ):
    a run with a live stream edge fails, saying so."""

    def __init__(self, broker: str) -> None:
        self.message = (
            f"live Stream edges between workers pass through Redis, and this deployment's "
            f"broker is {broker}://: use a Redis broker, or feed the stream into a "
            "non-stream input (it then receives the accumulated value)"
        )

    def writer(self, key: str) -> Any:
        raise _fatal(self.message)

    def reader(self, key: str) -> Any:
        raise _fatal(self.message)

    def end_job(self, job_id: str) -> None:
        """Nothing to drop."""


def _fatal(message: str) -> Exception:
    return FatalNodeError(message)
