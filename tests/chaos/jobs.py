"""The job the chaos tests break things under, and how they count what it recorded."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from orchestrator import Client, Job, JobResult, Workflow
from orchestrator.store import EventRecord, open_store
from tests.support.cluster import Cluster

NODES = ("ticks", "nap", "total", "log", "sums")


def running_sum(sink: Path, items: int, nap: float) -> Workflow:
    """``items`` iterations, each a nap on a worker, a running sum (a feedback edge: an
    iteration lost or run twice shows in every later sum) and a line in a JSONL sink."""
    return Workflow.loads(
        f"""
        name: chaos
        nodes:
          - {{id: ticks, type: Range, config: {{stop: {items}}}}}
          - {{id: nap, type: Sleep, config: {{seconds: {nap}}}}}
          - {{id: total, type: Math, config: {{op: add}}}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}}}
          - {{id: sums, type: Output, config: {{name: sums}}}}
        edges:
          - {{from: ticks.value, to: nap.value}}
          - {{from: nap.value, to: total.a}}
          - {{from: total.result, to: total.b, feedback: true, initial: 0}}
          - {{from: total.result, to: sums.value}}
          - {{from: total.result, to: log.value}}
        """
    )


def sums(items: int) -> list[int]:
    """The outputs of :func:`running_sum` with nothing lost and nothing doubled."""
    return [i * (i + 1) // 2 for i in range(items)]


def await_iterations(client: Client, job: Job, at_least: int, timeout: float = 60) -> float:
    """Wait until the job's loop counted ``at_least`` iterations; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        loops = {loop.name: loop for loop in client.loops(job.id)}
        if "ticks" in loops and loops["ticks"].iterations >= at_least:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"job {job.id} did not reach {at_least} iterations in {timeout} s")


def assert_once_each(
    cluster: Cluster, client: Client, job: Job, result: JobResult, items: int, sink: Path
) -> None:
    """The job completed with every iteration's outputs, runs, events and sink lines there
    once: none lost, none doubled."""
    assert result.status == "completed", result.error
    assert result.outputs == {"sums": sums(items)}
    runs = client.runs(job.id)
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.status for r in runs} == {"succeeded"}
    assert Counter(r.node for r in runs) == dict.fromkeys(NODES, items)
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert sorted(line["run"] for line in lines) == sorted(
        f"{job.id}:ticks:{i}:log" for i in range(items)
    )
    ended = Counter(
        event.run_id
        for event in _events(cluster, job)
        if event.kind == "run" and event.status == "succeeded"
    )
    assert ended == dict.fromkeys((r.run_id for r in runs), 1)


def full_log(cluster: Cluster, name: str) -> str:
    """Everything a process of the cluster wrote (``Cluster.log`` keeps the last lines)."""
    return (cluster.root / f"{name}.log").read_text(errors="replace")


def _events(cluster: Cluster, job: Job) -> list[EventRecord]:
    store = open_store(cluster.database_url, cluster.root / "home")
    try:
        found: list[EventRecord] = []
        after = 0
        while chunk := store.read_events(job.id, after=after, limit=1000):
            found += chunk
            after = chunk[-1].seq
        return found
    finally:
        store.close()
