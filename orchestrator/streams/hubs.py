"""The stream hub a deployment uses, chosen by its broker URL."""

from __future__ import annotations

import threading

from orchestrator.broker import REDIS_SCHEMES, scheme
from orchestrator.streams.channels import MemoryStreamHub, StreamHub
from orchestrator.streams.redis_hub import NoStreamTransport, RedisStreamHub

_named: dict[str, MemoryStreamHub] = {}
_lock = threading.Lock()


def open_stream_hub(broker_url: str) -> StreamHub:
    """Redis streams on a Redis broker; one in-process hub per ``memory://`` name
    (a coordinator and its in-process workers share it); on any other broker, a
    hub that fails live stream runs naming the limitation."""
    kind = scheme(broker_url)
    if kind in REDIS_SCHEMES:
        return RedisStreamHub(broker_url)
    if kind == "memory":
        with _lock:
            hub = _named.get(broker_url)
            if hub is None:
                hub = _named[broker_url] = MemoryStreamHub()
            return hub
    return NoStreamTransport(kind)
