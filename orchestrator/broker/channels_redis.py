"""The coordinator's queues as Redis lists.

A message is one JSON document pushed with ``LPUSH``; the consumer waits with
``BLMPOP`` (``BRPOP`` then ``RPOP key count`` before Redis 7) and takes a batch, so a
coordinator behind on a burst of results catches up in a few round trips.
One client (thread-safe, with its own connection pool) serves every thread;
redis-py retries a dropped connection with backoff.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from orchestrator.broker.channels import BatchHandler, Handler

log = logging.getLogger("segue.broker")
Raw = bytes | str
BATCH = 500
"""Results taken per round trip while draining."""


class RedisTransport:
    """Publishing with ``LPUSH``; consuming with ``BRPOP`` then ``RPOP`` in batches."""

    def __init__(self, url: str, results: str, control: str) -> None:
        self.results, self.control = results, control
        retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=8)
        self._client = redis.Redis.from_url(
            url,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
        )
        self._on_results: BatchHandler | None = None
        self._on_control: Handler | None = None
        self._multipop: bool | None = None  # BLMPOP (Redis >= 7), known after the first drain

    def publish(self, queue: str, body: dict[str, Any]) -> None:
        self._client.lpush(queue, json.dumps(body, separators=(",", ":")))

    def consume(self, on_results: BatchHandler, on_control: Handler) -> None:
        self._on_results, self._on_control = on_results, on_control

    def drain(self, timeout: float) -> int:
        if self._on_results is None or self._on_control is None:
            raise RuntimeError("call consume() before drain()")
        if self._multipop is None:
            version = str(self._client.info("server").get("redis_version", "0"))
            self._multipop = _version(version) >= (7, 0)
        results, controls = self._pop_batch(timeout) if self._multipop else self._pop_each(timeout)
        bodies = [body for raw in results if (body := _decode(raw, self.results)) is not None]
        if bodies:
            self._on_results(bodies)
        for raw in controls:
            if (body := _decode(raw, self.control)) is not None:
                self._on_control(body)
        return len(results) + len(controls)

    def _pop_batch(self, timeout: float) -> tuple[list[Raw], list[Raw]]:
        # Redis >= 7: BLMPOP waits for either queue and takes up to BATCH messages
        # in one round trip; wake-ups first, as they are few.
        popped = self._client.blmpop(
            max(timeout, 0.01), 2, self.control, self.results, direction="RIGHT", count=BATCH
        )
        if not popped:
            return [], []
        key, items = popped
        batch = _listed(items)
        return ([], batch) if _name(key) == self.control else (batch, [])

    def _pop_each(self, timeout: float) -> tuple[list[Raw], list[Raw]]:
        # Older servers: BRPOP for the first message, then RPOP with a count.
        popped = self._client.brpop([self.results, self.control], timeout=max(timeout, 0.01))
        if popped is None:
            return [], []
        key, first = popped
        results = [first] if _name(key) == self.results else []
        controls = [first] if not results else []
        with self._client.pipeline(transaction=False) as pipe:
            pipe.rpop(self.results, BATCH)
            pipe.rpop(self.control, BATCH)
            more_results, more_controls = (_listed(popped) for popped in pipe.execute())
        return results + more_results, controls + more_controls

    def depth(self) -> dict[str, int]:
        return {queue: int(self._client.llen(queue)) for queue in (self.results, self.control)}

    def close(self) -> None:
        self._client.close()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def _listed(popped: object) -> list[Raw]:
    return list(popped) if isinstance(popped, list) else []  # RPOP with a count: None when empty


def _name(key: object) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


def _decode(raw: Raw, queue: str) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        log.warning("dropped a message from %s that is not a JSON object: %.200r", queue, raw)
        return None
    return body
