"""Worker kill storms on a real cluster, shared by the chaos tests and
``benchmarks/chaos.py``: SIGKILL a worker's whole process group while it holds
runs, start a replacement, and measure how long each held run took to return.

Everything runs with the settings a user gets: no timeout is tuned.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orchestrator import Client, Workflow
from orchestrator.store import Store
from tests.support.cluster import Cluster


def loop_flow(sink: Path, items: int, nap: float) -> Workflow:
    """A paced loop: each iteration sleeps, then appends a line and an output."""
    return Workflow.loads(
        f"""
        name: storm-loop
        nodes:
          - {{id: ticks, type: Range, config: {{stop: {items}}}}}
          - {{id: nap, type: Sleep, config: {{seconds: {nap}}}}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}}}
          - {{id: out, type: Output, config: {{name: values}}}}
        edges:
          - {{from: ticks.value, to: nap.value}}
          - {{from: nap.value, to: log.value}}
          - {{from: nap.value, to: out.value}}
        """
    )


def fanout_flow(sink: Path, items: int, nap: float) -> Workflow:
    """A fan-out: every item's sleep runs at once (non-blocking), then its line."""
    return Workflow.loads(
        f"""
        name: storm-fanout
        nodes:
          - {{id: ticks, type: Range, config: {{stop: {items}}}}}
          - {{id: nap, type: Sleep, config: {{seconds: {nap}}}, blocking: false}}
          - {{id: log, type: JsonlSink, config: {{path: "{sink}"}}, blocking: false}}
        edges:
          - {{from: ticks.value, to: nap.value}}
          - {{from: nap.value, to: log.value}}
        """
    )


@dataclass
class Kill:
    """One worker killed while it held runs."""

    worker: str
    at: float
    held: tuple[str, ...]
    returned_after: float | None = None


@dataclass
class Storm:
    """The kills of one run and what they cost."""

    kills: list[Kill] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def resume_times(self) -> list[float]:
        """Seconds from each kill until the last run its worker held finished."""
        return [k.returned_after for k in self.kills if k.returned_after is not None]


_TASK = re.compile(r"Task segue\.node\.\w+\[([^\]]+)\] (received|succeeded)")


def held_in_log(cluster: Cluster, name: str, job_id: str, since: int) -> tuple[str, ...]:
    """The job's runs a worker received and had not finished, from its log after
    byte ``since`` (where its current process began writing)."""
    path = cluster.root / f"{name}.log"
    with path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    held: dict[str, None] = {}
    for run_id, what in _TASK.findall(text):
        if run_id.startswith(f"{job_id}:"):
            if what == "received":
                held[run_id] = None
            else:
                held.pop(run_id, None)
    return tuple(held)


def _log_size(cluster: Cluster, name: str) -> int:
    path = cluster.root / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def storm(
    cluster: Cluster,
    client: Client,
    store: Store,
    job_id: str,
    workers: list[str],
    kills: int,
    every_s: float,
    seed: int = 7,
    any_worker: bool = False,
) -> Storm:
    """Kill ``kills`` workers that hold runs of the job (``any_worker``: any worker,
    holding runs or not), one every ``every_s``, each replaced at once."""
    rng = random.Random(seed)
    result = Storm(logs=[cluster.root / f"{name}.log" for name in workers])
    began = {name: 0 for name in workers}
    while len(result.kills) < kills:
        time.sleep(every_s)
        held = {
            name: unfinished
            for name in workers
            if (unfinished := held_in_log(cluster, name, job_id, began[name]))
        }
        record = store.get_job(job_id)
        if record is None or record.status != "running":
            break
        if not held and not any_worker:
            continue
        victim = rng.choice(sorted(workers if any_worker else held))
        at = time.time()
        cluster.kill(victim, signal.SIGKILL)
        held[victim] = held_in_log(cluster, victim, job_id, began[victim])  # as it died
        began[victim] = _log_size(cluster, victim)
        cluster.start(victim)
        result.kills.append(Kill(victim, at, held.get(victim, ())))
    return result


def settle(store: Store, storm: Storm, job_id: str) -> None:
    """Fill in, once the job ended, when each kill's held runs were back: taken by
    a live worker that ran them (a delivery the claim refused does not count), or
    finished, whichever came first."""
    del job_id  # the held runs name their job
    for kill in storm.kills:
        back = []
        for run_id in kill.held:
            times = [at for at in [taken_again(storm, run_id, kill.at)] if at is not None]
            run = store.get_run(run_id)
            if run is not None and run.finished_at is not None and run.finished_at >= kill.at:
                times.append(run.finished_at)
            if times:
                back.append(min(times))
        if back:
            kill.returned_after = max(back) - kill.at


_TAKEN = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}):[^\]]*\] Task segue\.node\.\w+"
    r"\[([^\]]+)\] (?:(received)|succeeded in [^:]*: '(\w+))",
    re.MULTILINE,
)


def taken_again(storm: Storm, run_id: str, after: float) -> float | None:
    """When a worker's log first shows it took ``run_id`` after ``after`` and ran it
    (finished it, or still held it when it died), not skipped it."""
    first: float | None = None
    for path in storm.logs:
        if not path.exists():
            continue
        taken: float | None = None
        for stamp, run, received, outcome in _TAKEN.findall(path.read_text(errors="replace")):
            if run != run_id:
                continue
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if received:
                if taken is not None:  # the one before was never finished: it ran
                    first = taken if first is None else min(first, taken)
                taken = at if at >= after else None
            elif taken is not None:
                if outcome != "skipped":
                    first = taken if first is None else min(first, taken)
                taken = None
        if taken is not None:
            first = taken if first is None else min(first, taken)
    return first


def sink_lines(sink: Path) -> list[str]:
    """The run ids of the sink's lines, in order."""
    if not sink.exists():
        return []
    return [json.loads(line)["run"] for line in sink.read_text().splitlines()]
