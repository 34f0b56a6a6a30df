"""Distributed mode against raw Celery: the same broker, worker pool and settings.

The benchmark starts its own cluster: a PostgreSQL database and a Redis
database number of its own (dropped and flushed at the end), one ``segue
coordinator``, one ``segue worker`` and one raw Celery worker
(``celery -A benchmarks.raw_celery_tasks worker``). Both workers get the same
``celery worker`` arguments (``workers.bootstrap.worker_argv``: threads pool,
8 slots, task events, no gossip or mingle) and the same Celery settings
(``orchestrator.celery.make_celery``: JSON, late acks, reject on worker lost,
prefetch 1); the raw app adds only a Redis result backend and its own queue.

What is compared (a "worker run" is a task executed by a worker; Segue's
``Input``, ``Output`` and ``Group`` runs happen in the coordinator and are not
counted):

* chain - ms per hop. Segue: ``Constant -> 199 x Math(add) -> Output`` (``b``
  from an ``Input``), 200 worker runs one after another. Celery: ``chain`` of
  ``constant`` and 199 ``add`` tasks, 200 tasks. Wall time / 200.
* fan-out - worker runs per second. Segue: one ``Constant`` -> 2,000 ``Math(mul)``
  -> a binary tree of 1,999 ``Math(add)`` -> ``Output``: 4,000 worker runs.
  Celery: a ``group`` of 2,000 ``mul`` tasks whose results the caller collects
  from the result backend: 2,000 tasks, no dependencies between them.
* fan-in - seconds. Segue: ``Input`` (a 1,000-item list) -> ``Group`` whose
  sub-workflow squares the item (1,000 ``Math`` runs, gathered in order into one
  list) -> ``Format`` over the list on a worker -> ``Output``: 1,001 worker runs.
  Segue has no summing node, so the closing task formats the list; the sum is
  checked from the Group's list. Celery: ``chord(group(1,000 x mul), total)``:
  1,001 tasks.

Every time runs from submission until the caller holds the result (Segue's
client polls the store every 50 ms; Celery's result backend answers by
pub/sub, and every raw task stores its result there, as Celery does once a
backend is set). The Segue side's worker runs are each reported to the job's
results stream (and claimed ``running`` in PostgreSQL first if they outlast
``SEGUE_CLAIM_AFTER_S``); the coordinator journals every result, records every
run in PostgreSQL and decides every dispatch. Figures are the best of a few
runs; Segue and Celery runs alternate, and the worker of the side not being
timed sits idle. On a 2-core machine the whole benchmark takes about three
minutes; its figures swing by 20-30% from run to run on a shared VM (both sides
alike), so compare ratios over several runs.
Targets: chain at most 1.5x raw Celery's ms per hop; fan-out at least 0.8x raw
Celery's runs per second; fan-in faster than the chord.

Run: ``make bench`` or ``python benchmarks/bench_celery.py [--runs N] [--json]``.
Needs PostgreSQL and Redis on 127.0.0.1 (``scripts/ensure-services.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery, chain, chord, group
from graphs import fan_out_fan_in  # beside this file
from psycopg import sql
from raw_celery_tasks import RAW_QUEUE, create_app  # beside this file
from report import Column, services_missing, table, verdict  # beside this file

from orchestrator import Client, Workflow, WorkflowBuilder
from orchestrator.heartbeat import age
from orchestrator.settings import Settings
from workers.bootstrap import WorkerOptions, worker_argv

ROOT = Path(__file__).resolve().parent.parent
CHAIN_HOPS = 200
FAN_WIDTH = 2_000
FAN_IN = 1_000
SEGUE_WORKER = WorkerOptions(pool="thread", concurrency=8)
RAW_WORKER = WorkerOptions(pool="thread", queues=(RAW_QUEUE,), concurrency=8)
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/{number}"
CLAIM_KEY = "segue:test-run-claim"  # the key the test suite claims databases with
STARTUP_S = 60.0
JOB_TIMEOUT_S = 300.0


# the graphs for Segue ------------------------------------------------------------------
def chain_workflow(hops: int) -> Workflow:
    """``Constant -> Math(add) x (hops - 1) -> Output``: ``hops`` worker runs in a row."""
    b = WorkflowBuilder(f"chain-{hops}")
    b.node("n0", "Constant", config={"value": 0})
    b.node("one", "Input", config={"name": "one", "default": 1})  # runs in the coordinator
    previous = "n0.value"
    for i in range(1, hops):
        b.node(f"n{i}", "Math", config={"op": "add"})
        b.edge(previous, f"n{i}.a").edge("one.value", f"n{i}.b")
        previous = f"n{i}.result"
    b.node("end", "Output", config={"name": "end"})
    b.edge(previous, "end.value")
    return b.build()


def fan_workflow(width: int) -> Workflow:
    """One ``Constant``, ``width`` squares, a binary tree of adds, one ``Output``."""
    return fan_out_fan_in(width)


SQUARE = {
    "name": "square",
    "nodes": [
        {"id": "item", "type": "Input", "config": {"name": "item"}},
        {"id": "sq", "type": "Math", "config": {"op": "mul"}},
        {"id": "result", "type": "Output", "config": {"name": "result"}},
    ],
    "edges": [
        {"from": "item.value", "to": "sq.a"},
        {"from": "item.value", "to": "sq.b"},
        {"from": "sq.result", "to": "result.value"},
    ],
}


def fan_in_workflow() -> Workflow:
    """A ``Group`` squaring each item of the ``items`` input, then one task over the list."""
    b = WorkflowBuilder("fan-in")
    b.node("items", "Input", config={"name": "items"})
    b.node("squares", "Group", config={"workflow": SQUARE})
    b.node("listing", "Format", config={"template": "{value}"})
    b.node("out", "Output", config={"name": "squares"})
    b.node("text", "Output", config={"name": "text"})
    b.edge("items.value", "squares.items").edge("squares.results", "out.value")
    b.edge("squares.results", "listing.value").edge("listing.text", "text.value")
    return b.build()


# the runs ------------------------------------------------------------------------------
Work = Callable[[], tuple[str | None, int]]  # () -> (Segue's job id or None, the answer)


def segue_work(
    client: Client,
    workflow: Workflow,
    answer: Callable[[dict[str, Any]], int],
    inputs: dict[str, Any] | None = None,
) -> Work:
    """Submit ``workflow`` to the cluster and wait until it is done and recorded."""

    def work() -> tuple[str | None, int]:
        job = client.submit(workflow, inputs=inputs)
        result = job.wait(timeout=JOB_TIMEOUT_S)
        assert result.status == "completed", f"{workflow.name}: {result.error}"
        return job.id, answer(result.outputs)

    return work


def raw_chain(app: Celery, hops: int) -> Work:
    """``constant(0) | add(1) | add(1) | ...``: ``hops`` tasks, each started by the one before."""
    constant, add = app.tasks["raw.constant"], app.tasks["raw.add"]

    def work() -> tuple[str | None, int]:
        flow = chain(constant.si(0), *(add.s(1) for _ in range(hops - 1)))
        # Not following parents: by default the caller re-reads every parent's result
        # while it waits (~7 GETs per hop here), CPU the workers would otherwise get.
        result = flow.apply_async().get(timeout=JOB_TIMEOUT_S, follow_parents=False)
        return None, int(result)

    return work


def raw_group(app: Celery, width: int) -> Work:
    """``width`` independent ``mul(3, 3)`` tasks; the caller collects and sums the results."""
    mul = app.tasks["raw.mul"]

    def work() -> tuple[str | None, int]:
        results = group(mul.s(3, 3) for _ in range(width)).apply_async()
        return None, sum(results.get(timeout=JOB_TIMEOUT_S))

    return work


def raw_chord(app: Celery, width: int) -> Work:
    """``chord(mul(i, i) for i < width)(total)``: the chord's body sums on a worker."""
    mul, total = app.tasks["raw.mul"], app.tasks["raw.total"]

    def work() -> tuple[str | None, int]:
        result = chord(mul.s(i, i) for i in range(width))(total.s())
        return None, int(result.get(timeout=JOB_TIMEOUT_S))

    return work


@dataclass(frozen=True)
class Case:
    """One comparison: the two runs, what both must answer and how the figure is made.

    ``figure(seconds, count)`` turns a wall time and a number of worker runs
    (Segue) or tasks (Celery) into the reported figure; ``ratio`` is Segue's
    figure over Celery's, and ``meets(ratio)`` is the target.
    """

    name: str
    unit: str
    segue: Work
    raw: Work
    raw_tasks: int
    answer: int
    figure: Callable[[float, int], float]
    target: str
    meets: Callable[[float], bool]


def cases(client: Client, app: Celery) -> list[Case]:
    """The three comparisons, in the order they run."""
    items = list(range(FAN_IN))
    return [
        Case(
            name=f"chain {CHAIN_HOPS}",
            unit="ms/hop",
            segue=segue_work(client, chain_workflow(CHAIN_HOPS), lambda out: out["end"]),
            raw=raw_chain(app, CHAIN_HOPS),
            raw_tasks=CHAIN_HOPS,
            answer=CHAIN_HOPS - 1,
            figure=lambda seconds, count: 1000 * seconds / count,
            target="<= 1.5x",
            meets=lambda ratio: ratio <= 1.5,
        ),
        Case(
            name=f"fan-out {FAN_WIDTH:,}",
            unit="runs/s",
            segue=segue_work(client, fan_workflow(FAN_WIDTH), lambda out: out["total"]),
            raw=raw_group(app, FAN_WIDTH),
            raw_tasks=FAN_WIDTH,
            answer=9 * FAN_WIDTH,
            figure=lambda seconds, count: count / seconds,
            target=">= 0.8x",
            meets=lambda ratio: ratio >= 0.8,
        ),
        Case(
            name=f"fan-in {FAN_IN:,}",
            unit="s",
            segue=segue_work(
                client, fan_in_workflow(), lambda out: sum(out["squares"]), {"items": items}
            ),
            raw=raw_chord(app, FAN_IN),
            raw_tasks=FAN_IN + 1,
            answer=sum(i * i for i in items),
            figure=lambda seconds, count: seconds,
            target="< 1.0x",
            meets=lambda ratio: ratio < 1.0,
        ),
    ]


def measure(client: Client, app: Celery, runs: int) -> list[dict[str, Any]]:
    """Each case ``runs`` times, Segue and Celery alternating; the fastest of each kept."""
    rows = []
    for case in cases(client, app):
        segue_s = raw_s = float("inf")
        job_id, answers = "", set()
        for _ in range(runs):
            start = time.perf_counter()
            job, answer = case.segue()
            if (elapsed := time.perf_counter() - start) < segue_s:
                segue_s, job_id = elapsed, job or ""
            answers.add(answer)
            start = time.perf_counter()
            _, answer = case.raw()
            raw_s = min(raw_s, time.perf_counter() - start)
            answers.add(answer)
        segue_runs = worker_runs(client, job_id)  # counted from the store, after timing
        segue, raw = case.figure(segue_s, segue_runs), case.figure(raw_s, case.raw_tasks)
        ratio = segue / raw
        rows.append(
            {
                "case": case.name,
                "unit": case.unit,
                "segue": round(segue, 2),
                "celery": round(raw, 2),
                "ratio": round(ratio, 2),
                "target": case.target,
                "pass": case.meets(ratio),
                "segue_s": round(segue_s, 4),
                "segue_worker_runs": segue_runs,
                "celery_s": round(raw_s, 4),
                "celery_tasks": case.raw_tasks,
                "same_result": answers == {case.answer},
            }
        )
    return rows


def worker_runs(client: Client, job_id: str) -> int:
    """Runs of the job a worker executed (not the coordinator's inline ones)."""
    return sum(1 for r in client.runs(job_id) if r.worker and r.worker != "coordinator")


# services and processes ----------------------------------------------------------------
@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its URL."""
    name = f"segue_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield PG_URL.format(name=name)
        finally:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@contextmanager
def redis_database() -> Iterator[str]:
    """An empty Redis database number nobody else claimed, flushed afterwards; yields its URL."""
    for number in range(1, 16):
        client = redis.Redis(host="127.0.0.1", port=6379, db=number, socket_timeout=5)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True, ex=3600):
            break
    else:
        raise RuntimeError("no free Redis database among 1-15 (each holds data or a claim)")
    try:
        yield REDIS_URL.format(number=number)
    finally:
        client.flushdb()


class Processes:
    """The coordinator and the two workers, as subprocesses logging into ``root``."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SEGUE_HOME": str(settings.home),
            "SEGUE_BROKER_URL": settings.broker_url,
            "SEGUE_DATABASE_URL": settings.database_url or "",
            "SEGUE_ARTIFACTS_URL": settings.artifacts_location(),
            "SEGUE_HEARTBEAT_INTERVAL_S": "0.5",
        }
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> None:
        env = {**self.env, "SEGUE_HEARTBEAT_PATH": str(self.root / f"{name}.heartbeat")}
        with (self.root / f"{name}.log").open("ab") as log:
            command = [sys.executable, "-m", *argv]
            self.running[name] = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_beating(self, *names: str) -> None:
        """Wait until each named process wrote a fresh heartbeat file."""
        deadline = time.monotonic() + STARTUP_S
        for name in names:
            while (beat := age(self.root / f"{name}.heartbeat")) is None or beat > 5:
                self.check(name)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not start:\n{self.log(name)}")
                time.sleep(0.1)

    def check(self, name: str) -> None:
        process = self.running[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Warm-stop every process; kill what is still there after 20 s."""
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def segue_cluster(stack: ExitStack, root: Path) -> tuple[Client, Processes]:
    """A Redis and a PostgreSQL database of their own, a client and a running
    coordinator, all torn down with ``stack``."""
    settings = Settings(
        home=root / "home",
        broker_url=stack.enter_context(redis_database()),
        database_url=stack.enter_context(postgres_database()),
        artifacts_url=str(root / "artifacts"),
    )
    client = stack.enter_context(Client(settings=settings))  # migrates the schema first
    processes = Processes(root, settings)
    stack.callback(processes.stop)
    processes.start("coordinator", ["orchestrator.cli", "coordinator"])
    return client, processes


@contextmanager
def cluster(root: Path) -> Iterator[tuple[Client, Celery]]:
    """Services, processes, a Segue client and the raw Celery app; all torn down after."""
    with ExitStack() as stack:
        client, processes = segue_cluster(stack, root)
        settings = processes.settings
        segue_args = [f"--pool={SEGUE_WORKER.pool}", f"--concurrency={SEGUE_WORKER.concurrency}"]
        processes.start("segue-worker", ["orchestrator.cli", "worker", *segue_args])
        # Segue's worker arguments (workers.bootstrap), its own queue, a name of its own.
        raw_argv = [*worker_argv(RAW_WORKER), f"--hostname=raw-{os.getpid()}@%h"]
        processes.start("raw-worker", ["celery", "-A", "benchmarks.raw_celery_tasks", *raw_argv])
        processes.wait_beating("coordinator", "segue-worker")
        app = create_app(settings)
        stack.callback(app.close)
        # Warm both sides up; this also waits for the raw worker to serve.
        segue_work(client, chain_workflow(3), lambda out: out["end"])()
        raw_chain(app, 3)()
        yield client, app


# reporting -----------------------------------------------------------------------------
CELERY_COLUMNS = (
    Column("case", "case", align="<"),
    Column("unit", "unit"),
    Column("segue", "segue", ","),
    Column("celery", "celery", ","),
    Column("ratio", lambda r: f"{r['ratio']:.2f}x"),
    Column("target", "target"),
    Column("verdict", lambda r: verdict(r["pass"])),
    Column("worker runs / tasks", lambda r: f"{r['segue_worker_runs']:,} / {r['celery_tasks']:,}"),
    Column("same result", "same_result", align="<"),
)


def print_table(rows: list[dict[str, Any]], runs: int) -> None:
    argv = worker_argv(RAW_WORKER)
    print(
        f"Segue cluster vs raw Celery, each on one worker ({argv[1]} {argv[2]}), the same"
        f" broker and Celery settings; best of {runs}"
    )
    print(table(CELERY_COLUMNS, rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args()
    try:
        with ExitStack() as stack:
            root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            root.mkdir(parents=True, exist_ok=True)
            client, app = stack.enter_context(cluster(root))
            rows = measure(client, app, args.runs)
    except (psycopg.OperationalError, redis.ConnectionError) as exc:
        print(services_missing("bench_celery", exc), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
