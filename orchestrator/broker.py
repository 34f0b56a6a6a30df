"""Connections to the broker, opened one way, and the one retry policy of broker calls.

Every Redis client and kombu connection of the orchestrator's adapters (the
coordinator's channels, the queue backend) comes from here.

The policy (DESIGN section 9, tenacity around calls safe to repeat): after a
transient broker error, reconnect and call again at once, then back off
exponentially from :data:`FIRST_WAIT_S` up to :data:`MAX_WAIT_S`, for at most
:data:`RETRIES` calls after the first; then the last error is raised. A Redis
client applies it itself (redis-py's own retry, from the same numbers); a
kombu call is wrapped in :func:`retry_call`. Celery's task publishing keeps
Celery's publish retry policy.

The client libraries are imported by the function that opens their
connection, so a process imports only the one its broker needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

if TYPE_CHECKING:
    import redis
    from kombu import Connection

T = TypeVar("T")

REDIS_SCHEMES = frozenset({"redis", "rediss"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
RETRIES = 8
"""Calls after the first one that failed."""
FIRST_WAIT_S = 0.05
"""The first backoff; it doubles per retry."""
MAX_WAIT_S = 2.0
"""The longest backoff."""
HEALTH_CHECK_S = 30
"""A Redis connection idle this long is pinged before it is used again."""


def scheme(url: str) -> str:
    """The scheme of a broker URL (``redis``, ``amqp``, ``memory`` …)."""
    return urlsplit(url).scheme


def redacted(url: str) -> str:
    """``url`` without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def redis_client(url: str, *, retries: int = RETRIES) -> redis.Redis:
    """A Redis client (thread-safe, with its own connection pool) that retries per the
    policy after a dropped connection or a timeout.

    ``retries=0``: a client whose calls a caller already wraps in
    :func:`retry_call`, so the retries do not multiply.
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=MAX_WAIT_S, base=FIRST_WAIT_S), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=HEALTH_CHECK_S,
    )


def kombu_connection(url: str, transport_options: dict[str, Any] | None = None) -> Connection:
    """A kombu connection (not yet connected) without AMQP heartbeats.

    heartbeat=0: a thread may hold a message for a long iteration without
    touching the connection; missed heartbeats would make RabbitMQ close it and
    redeliver the message to a competing reader.
    """
    from kombu import Connection

    return Connection(url, transport_options=transport_options or {}, heartbeat=0)


def retry_call(
    call: Callable[[], T],
    errors: tuple[type[BaseException], ...],
    reconnect: Callable[[BaseException], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried per the policy after one of ``errors``.

    Only for calls safe to repeat: a call that failed may have taken effect.

    Args:
        call: The broker call.
        errors: The transient errors; any other goes straight to the caller.
        reconnect: Called with the error before each retry (log it, drop the
            connection so that the next call opens a new one).
        sleep: Waits between retries (tests pass their own).

    Raises:
        The last error, once :data:`RETRIES` retries failed too.
    """
    try:
        return call()  # the common case, without building a retrying loop
    except errors as exc:
        reconnect(exc)

    def before_sleep(state: RetryCallState) -> None:
        if state.outcome is not None and (exc := state.outcome.exception()) is not None:
            reconnect(exc)

    retrying = Retrying(
        stop=stop_after_attempt(RETRIES),
        wait=wait_exponential(multiplier=FIRST_WAIT_S, max=MAX_WAIT_S),
        retry=retry_if_exception_type(errors),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
