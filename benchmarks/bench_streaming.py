"""Streams (DESIGN 3.14): chunk latency and throughput through a 3-stage stream.

The pipeline: ``StampSource`` yields N chunks, each the wall-clock time it was
yielded -> ``StampRelay`` (async) passes each chunk on -> ``StampSink`` takes
each chunk and notes how long after its yield it arrived. Latency is end to
end (yield in stage 1 to receipt in stage 3, two hops); chunks per second is
N over the span from the first yield to the last receipt.

* embedded - the pipeline on an embedded engine (thread pool, in-process channels).
* asyncio floor - the same three stages as a plain asyncio generator chain in
  one event loop: no orchestrator at all, the floor.
* celery - the pipeline on a cluster: a coordinator, one Segue thread-pool
  worker (8 slots) as its own process; chunks pass between the runs through
  a Redis stream per edge.
* celery per-chunk chain - what a Celery user would write: per chunk a
  ``chain(relay.s(t), stamp.s())`` on one raw Celery worker with the same
  arguments and a Redis result backend; the caller sends every chain, then
  collects the results.

Targets: embedded median under 1 ms and at least 50k chunks/s; celery median
under 5 ms and at least 5k chunks/s; both at least 10x the per-chunk chain's
chunks/s. Figures are the best (lowest median) of ``--runs``.

Run: ``python benchmarks/bench_streaming.py [--runs N] [--json]``. The celery
rows need PostgreSQL and Redis on 127.0.0.1 (``scripts/ensure-services.sh``);
``--embedded-only`` skips them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench_celery import Processes, postgres_database, redis_database  # beside this file
from celery import Celery, chain
from stream_nodes import RAW_QUEUE, bench_registry, create_app, summary  # beside this file

from orchestrator import Client, Workflow, WorkflowBuilder
from orchestrator.coordinator import Coordinator
from orchestrator.queues import MemoryQueueBackend
from orchestrator.settings import Settings
from workers.bootstrap import WorkerOptions, worker_argv

HERE = Path(__file__).resolve().parent
EMBEDDED_CHUNKS = 20_000
CELERY_CHUNKS = 5_000
CHAIN_CHUNKS = 500
RAW_WORKER = WorkerOptions(pool="thread", queues=(RAW_QUEUE,), concurrency=8)
TARGETS = {
    "embedded": (1.0, 50_000),
    "celery": (5.0, 5_000),
}


def pipeline(count: int) -> Workflow:
    b = WorkflowBuilder("stream-bench")
    source = b.node("source", "StampSource", config={"count": count})
    relay = b.node("relay", "StampRelay")
    sink = b.node("sink", "StampSink")
    out = b.node("out", "Output", config={"name": "sink"})
    first = b.node("first", "Output", config={"name": "first"})
    last = b.node("last", "Output", config={"name": "last"})
    b.edge(source["stamp"], relay["stamp"]).edge(relay["stamp"], sink["stamp"])
    b.edge(sink["latencies_ms"], out["value"])
    b.edge(sink["first_yield"], first["value"]).edge(sink["last_receive"], last["value"])
    return b.build()


def segue_stream(client: Client, count: int) -> dict[str, Any]:
    result = client.submit(pipeline(count)).wait(timeout=300)
    if result.status != "completed":
        raise RuntimeError(f"the stream job {result.status}: {result.error}")
    out = result.outputs
    return summary(out["sink"], out["first"], out["last"])


def asyncio_floor(count: int) -> dict[str, Any]:
    async def source() -> AsyncIterator[float]:
        for _ in range(count):
            yield time.time()

    async def relay(stamps: AsyncIterator[float]) -> AsyncIterator[float]:
        async for stamp in stamps:
            yield stamp

    async def sink() -> dict[str, Any]:
        latencies, first, last = [], 0.0, 0.0
        async for stamp in relay(source()):
            last = time.time()
            first = first or stamp
            latencies.append((last - stamp) * 1000)
        return summary(latencies, first, last)

    return asyncio.run(sink())


def celery_chain(app: Celery, count: int) -> dict[str, Any]:
    relay, stamp = app.tasks["rawstream.relay"], app.tasks["rawstream.stamp"]
    sent = []
    first = time.time()
    for _ in range(count):
        sent.append(chain(relay.s(time.time()), stamp.s()).apply_async())
    arrivals = [r.get(timeout=60) for r in sent]
    return summary([a[1] for a in arrivals], first, max(a[0] for a in arrivals))


def best(runs: int, measure: Any) -> dict[str, Any]:
    rows = [measure() for _ in range(runs)]
    return min(rows, key=lambda r: r["median_ms"])


@contextmanager
def cluster(root: Path) -> Iterator[tuple[Client, Celery]]:
    """PostgreSQL, Redis, a coordinator (in this process, with the bench node
    types), a Segue worker and a raw Celery worker (processes); torn down after."""
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        settings = Settings(
            home=root / "home",
            broker_url=stack.enter_context(redis_database()),
            database_url=stack.enter_context(postgres_database()),
            artifacts_url=str(root / "artifacts"),
        )
        registry = bench_registry()
        client = stack.enter_context(Client(settings=settings, registry=registry))
        processes = Processes(root, settings)
        processes.env["PYTHONPATH"] += os.pathsep + str(HERE)
        stack.callback(processes.stop)
        processes.start("segue-worker", ["stream_nodes", "segue-worker"])
        raw_argv = [*worker_argv(RAW_WORKER), f"--hostname=rawstream-{os.getpid()}@%h"]
        processes.start("raw-worker", ["celery", "-A", "stream_nodes", *raw_argv])
        coordinator = Coordinator(settings, registry, MemoryQueueBackend())
        serving = threading.Thread(target=coordinator.run, name="bench-coordinator", daemon=True)
        serving.start()
        stack.callback(serving.join, 30)
        stack.callback(coordinator.stop)
        processes.wait_beating("segue-worker")
        app = create_app(settings)
        stack.callback(app.close)
        segue_stream(client, 10)  # warm up; also waits for the raw worker below
        celery_chain(app, 3)
        yield client, app


def verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    chain_rate = rows.get("celery per-chunk chain", {}).get("chunks_per_s")
    out = {}
    for name, (latency, rate) in TARGETS.items():
        row = rows.get(name)
        if row is None:
            continue
        ok = row["median_ms"] < latency and row["chunks_per_s"] >= rate
        if chain_rate:
            ok = ok and row["chunks_per_s"] >= 10 * chain_rate
        out[name] = ok
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    parser.add_argument("--embedded-only", action="store_true", help="skip the cluster rows")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args()
    rows: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        embedded = stack.enter_context(
            Client.embedded(root / "embedded", registry=bench_registry())
        )
        segue_stream(embedded, 100)  # warm up
        rows["embedded"] = best(args.runs, lambda: segue_stream(embedded, EMBEDDED_CHUNKS))
        rows["asyncio floor"] = best(args.runs, lambda: asyncio_floor(EMBEDDED_CHUNKS))
        if not args.embedded_only:
            client, app = stack.enter_context(cluster(root / "cluster"))
            rows["celery"] = best(args.runs, lambda: segue_stream(client, CELERY_CHUNKS))
            rows["celery per-chunk chain"] = best(
                args.runs, lambda: celery_chain(app, CHAIN_CHUNKS)
            )
    passed = verdicts(rows)
    if args.json:
        print(json.dumps({"rows": rows, "pass": passed}, indent=2))
        return 0
    print("3-stage stream (source -> relay -> sink), latency from yield to receipt two hops on")
    print(f"{'case':24s} {'chunks':>7s} {'median ms':>10s} {'p99 ms':>8s} {'chunks/s':>9s} verdict")
    for name, row in rows.items():
        verdict = {True: "PASS", False: "MISS"}.get(passed.get(name), "")  # type: ignore[call-overload]
        print(
            f"{name:24s} {row['chunks']:>7,} {row['median_ms']:>10.3f} {row['p99_ms']:>8.3f}"
            f" {row['chunks_per_s']:>9,} {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
