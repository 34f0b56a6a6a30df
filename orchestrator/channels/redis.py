"""The coordinator's queues as Redis streams (Redis 6.2 or later).

A message is one entry whose field ``b`` holds a JSON document. A job's
results stream is created by the coordinator that follows the job; workers
add to it with ``NOMKSTREAM``, so a result for a job that ended (its stream
deleted) is dropped instead of leaving a stream behind. The consumer reads
every followed stream and the control stream with one blocking ``XREAD``,
a batch per stream, and deletes a result (``XDEL``) once it is journaled. The
control stream is capped (``MAXLEN ~``) and read from its end by every
coordinator: a broadcast. One client (thread-safe, with its own connection
pool) serves every thread; it retries a dropped connection per the broker retry
policy (:mod:`orchestrator.broker`). A call that outlasts those retries raises;
:meth:`RedisTransport.transient` tells the caller it may try again later, and
state (read positions, releases asked for) is kept for that later call.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, cast

import redis

from orchestrator.broker import redis_client
from orchestrator.channels.base import Body, ControlHandler, Delivery, ResultsHandler, decode

log = logging.getLogger("segue.broker")
Raw = bytes | str
BATCH = 500
"""Entries read per stream and round trip."""
CONTROL_KEEP = 1000
"""About how many wake-ups the control stream keeps."""
FIELD = b"b"
MIN_VERSION = (6, 2)


class RedisTransport:
    """Publishing with ``XADD``; consuming with ``XREAD``; releasing with ``XDEL``."""

    def __init__(self, url: str, control: str) -> None:
        self.control = control
        self._client = redis_client(url)
        self._on_results: ResultsHandler | None = None
        self._on_control: ControlHandler | None = None
        self._positions: dict[str, Raw] = {}  # stream -> last id read
        self._jobs: dict[str, str] = {}  # results stream -> job id
        self._done: list[tuple[str, list[object]]] = []
        self._done_lock = threading.Lock()

    def transient(self, error: BaseException) -> bool:
        # A wrong password is a ConnectionError to redis-py, but waiting will not fix it.
        return isinstance(error, redis.ConnectionError | redis.TimeoutError) and not isinstance(
            error, redis.AuthenticationError
        )

    def publish_result(self, queue: str, body: Body) -> None:
        self._client.xadd(queue, {FIELD: _dumps(body)}, nomkstream=True)

    def publish_control(self, body: Body) -> None:
        self._client.xadd(self.control, {FIELD: _dumps(body)}, maxlen=CONTROL_KEEP)

    def consume(self, on_results: ResultsHandler, on_control: ControlHandler) -> None:
        version = str(self._client.info("server").get("redis_version", "0"))
        if _version(version) < MIN_VERSION:
            raise RuntimeError(f"Segue needs Redis 6.2 or later as its broker; this is {version}")
        self._on_results, self._on_control = on_results, on_control
        last: Any = self._client.xrevrange(self.control, count=1)
        self._positions[self.control] = last[0][0] if last else b"0-0"  # wake-ups from now on

    def follow(self, job_id: str, queue: str) -> list[Delivery]:
        if queue in self._positions:
            return []
        if not self._client.exists(queue):
            # An empty stream: XGROUP CREATE ... MKSTREAM is the way to make one.
            with self._client.pipeline(transaction=True) as pipe:
                pipe.xgroup_create(queue, "segue.new", id="$", mkstream=True)
                pipe.xgroup_destroy(queue, "segue.new")
                pipe.execute()
        backlog: list[Delivery] = []
        position: Raw = b"0-0"
        while True:
            entries: Any = self._client.xrange(queue, min=_after(position), count=BATCH)
            if not entries:
                break
            for entry_id, fields in entries:
                position = entry_id
                body = _decode(fields, queue)
                if body is None:
                    self._client.xdel(queue, entry_id)
                else:
                    backlog.append((body, entry_id))
        self._positions[queue] = position
        self._jobs[queue] = job_id
        return backlog

    def forget(self, queue: str, delete: bool) -> None:
        self.release()  # what was journaled goes first; the rest stays for the next reader
        self._positions.pop(queue, None)
        self._jobs.pop(queue, None)
        if delete:
            self._client.delete(queue)

    def done(self, queue: str, tokens: list[object]) -> None:
        with self._done_lock:
            self._done.append((queue, tokens))

    def drain(self, timeout: float) -> int:
        if self._on_results is None or self._on_control is None:
            raise RuntimeError("call consume() before drain()")
        self.release()
        positions: Any = self._positions
        read: Any = self._client.xread(positions, count=BATCH, block=max(1, int(timeout * 1000)))
        count = 0
        for key, entries in read or []:
            stream = key.decode() if isinstance(key, bytes) else str(key)
            if stream not in self._positions:
                continue  # forgotten while the read was on its way
            self._positions[stream] = entries[-1][0]
            count += len(entries)
            if stream == self.control:
                for _, fields in entries:
                    if (body := _decode(fields, stream)) is not None:
                        self._on_control(body)
                continue
            deliveries, bad = [], []
            for entry_id, fields in entries:
                body = _decode(fields, stream)
                if body is None:
                    bad.append(entry_id)
                else:
                    deliveries.append((body, entry_id))
            if bad:
                self._client.xdel(stream, *bad)
            if deliveries:
                self._on_results(self._jobs[stream], deliveries)
        return count

    def release(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        if not done:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for queue, tokens in done:
                    if tokens:
                        pipe.xdel(queue, *(cast(Raw, token) for token in tokens))
                pipe.execute()
        except Exception:
            with self._done_lock:  # deleting again is harmless: asked again at the next turn
                self._done[:0] = done
            raise

    def depth(self, queues: list[str]) -> dict[str, int]:
        with self._client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.xlen(queue)
            return {queue: int(n) for queue, n in zip(queues, pipe.execute(), strict=True)}

    def close(self) -> None:
        self._client.close()


def _dumps(body: Body) -> str:
    return json.dumps(body, separators=(",", ":"))


def _after(entry_id: Raw) -> str:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return "(" + text  # exclusive range start


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def _decode(fields: dict[Any, Any], queue: str) -> Body | None:
    return decode(fields.get(FIELD), queue)
