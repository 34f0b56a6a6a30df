"""Node types and raw Celery tasks for ``bench_streaming.py``, and the worker
entry points that serve them.

* ``StampSource(count)`` streams ``count`` chunks, each the wall-clock time it
  was yielded; ``StampRelay`` passes a stream on; ``StampSink`` receives the
  stream and reports, per chunk, how long after its yield it arrived.
* The raw Celery side is what a Celery user would write for the same
  pipeline: one ``relay`` task and one ``stamp`` task per chunk, chained.

``python benchmarks/stream_nodes.py segue-worker`` runs a Segue worker with the
bench node types; ``celery -A stream_nodes worker ...`` the raw one (Celery
asks this module for ``app``, built from the ``SEGUE_*`` environment).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
from celery import Celery
from pydantic import Field

from nodes import Node, NodeConfig, NodeRegistry, Ports, RunContext, Stream
from nodes.library import builtin_registry
from orchestrator.celery import make_celery
from orchestrator.settings import Settings

RAW_QUEUE = "rawstream"


class StampSource(Node):
    """Stream ``count`` chunks, each the time it was yielded (``interval_s`` apart)."""

    class Config(NodeConfig):
        count: int = Field(default=1000, ge=1)
        interval_s: float = Field(default=0.0, ge=0, description="Pause between chunks")

    class Outputs(Ports):
        stamp: Stream[float]

    config: Config

    def run(self, inputs: Node.Inputs, ctx: RunContext) -> Iterator[Outputs]:
        interval = self.config.interval_s
        for _ in range(self.config.count):
            if interval:
                time.sleep(interval)
            yield self.Outputs(stamp=time.time())


class StampRelay(Node):
    """Pass a stream on, chunk by chunk."""

    class Inputs(Ports):
        stamp: Stream[float]

    class Outputs(Ports):
        stamp: Stream[float]

    async def run(self, inputs: Inputs, ctx: RunContext) -> AsyncIterator[Outputs]:
        stamps: AsyncIterator[float] = inputs.stamp  # type: ignore[assignment]
        async for stamp in stamps:
            yield self.Outputs(stamp=stamp)


class StampSink(Node):
    """Receive a stream; report each chunk's latency (ms) and the stream's span."""

    class Inputs(Ports):
        stamp: Stream[float]

    class Outputs(Ports):
        latencies_ms: list[float]
        first_yield: float
        last_receive: float

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        stamps: Iterator[float] = inputs.stamp  # type: ignore[assignment]
        latencies, first, last = [], None, 0.0
        for stamp in stamps:
            last = time.time()
            first = stamp if first is None else first
            latencies.append((last - stamp) * 1000)
        return self.Outputs(latencies_ms=latencies, first_yield=first or 0.0, last_receive=last)


def bench_registry() -> NodeRegistry:
    """The built-ins and the bench node types."""
    registry = builtin_registry().copy()
    for node_type in (StampSource, StampRelay, StampSink):
        registry.register(node_type)
    return registry


def summary(latencies_ms: list[float], first: float, last: float) -> dict[str, Any]:
    """Median and p99 latency (ms) and chunks per second of one measured stream."""
    ordered = sorted(latencies_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "chunks": len(ordered),
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "chunks_per_s": round(len(ordered) / max(1e-9, last - first)),
    }


# raw Celery ------------------------------------------------------------------------------
def create_app(settings: Settings) -> Celery:
    """Segue's Celery app plus a Redis result backend and the per-chunk tasks."""
    app = make_celery(settings, name="rawstream")
    app.conf.update(
        result_backend=settings.broker_url,
        task_ignore_result=False,
        result_expires=3600,
        task_default_queue=RAW_QUEUE,
    )
    options: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}
    app.task(name="rawstream.relay", **options)(relay)
    app.task(name="rawstream.stamp", **options)(stamp)
    return app


def relay(value: float) -> float:
    """What ``StampRelay`` does to one chunk."""
    return value


def stamp(value: float, inbox: str) -> None:
    """What ``StampSink`` does to one chunk: when it arrived and its latency (ms),
    pushed to the caller's Redis list ``inbox`` (results backends stall on
    thousands of pending results; a list does not)."""
    now = time.time()
    _redis().rpush(inbox, json.dumps([now, (now - value) * 1000]))


_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(Settings().broker_url)
    return _client


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app(Settings())
    return _app


def main() -> int:
    """``segue-worker``: a Segue thread-pool worker with the bench node types."""
    from workers.bootstrap import WorkerOptions, run_worker

    if sys.argv[1:] != ["segue-worker"]:
        print("usage: stream_nodes.py segue-worker", file=sys.stderr)
        return 2
    return run_worker(WorkerOptions(pool="thread", concurrency=8), Settings(), bench_registry())


if __name__ == "__main__":
    sys.exit(main())
