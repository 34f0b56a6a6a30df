"""Chaos figures at scale: worker SIGKILL storms against an undisturbed run.

    python benchmarks/chaos.py [--items 1000] [--fanout 1000] [--kills 20]
                               [--nap S] [--fanout-nap S] [--only loop|fan-out] [--json]

For a paced loop (Range -> Sleep 0.1 s -> JsonlSink + Output) and a fan-out
(non-blocking Sleeps of 0.5 s, then a JsonlSink line each; kills one a second),
on a coordinator and three
thread workers with the settings a user gets: one undisturbed run, then one
with ``--kills`` random workers SIGKILLed (whole process group), each replaced
at once. Reported: runs lost, outputs and sink lines doubled, how long the runs
a killed worker held took to come back (median, max; the bound is
``worker_timeout_s`` + 5 s), and the wall time against the undisturbed run.

Needs Redis and PostgreSQL on 127.0.0.1 (``scripts/ensure-services.sh``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from orchestrator import Workflow  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from orchestrator.store import open_store  # noqa: E402
from tests.chaos.storm import fanout_flow, loop_flow, settle, sink_lines, storm  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.services import postgres_database, redis_database  # noqa: E402

WORKERS = ["thread-1", "thread-2", "thread-3"]


def scenario(
    name: str, build: Any, items: int, expected_runs: int, kills: int, every_s: float
) -> dict[str, Any]:
    """One undisturbed run and one storm of ``kills`` kills, on fresh clusters."""
    row: dict[str, Any] = {"scenario": name, "items": items, "kills": kills}
    for disturbed in (False, True):
        with postgres_database() as database, redis_database() as broker:
            root = Path(tempfile.mkdtemp(prefix="segue-chaos-"))
            cluster = Cluster(root, broker, database)
            try:
                for process in ["coordinator", *WORKERS]:
                    cluster.start(process)
                cluster.wait_ready("coordinator", *WORKERS)
                store = open_store(database, root / "home")
                sink = root / "sink.jsonl"
                flow: Workflow = build(sink, items)
                with cluster.client() as client:
                    started = time.monotonic()
                    job = client.submit(flow)
                    if disturbed:
                        result_storm = storm(
                            cluster, client, store, job.id, WORKERS, kills, every_s, any_worker=True
                        )
                    result = job.wait(timeout=3600)
                    wall = time.monotonic() - started
                    runs = client.runs(job.id)
                if not disturbed:
                    row["undisturbed_s"] = round(wall, 1)
                    continue
                settle(store, result_storm, job.id)
                store.close()
                lines = Counter(sink_lines(sink))
                resumes = result_storm.resume_times()
                row.update(
                    status=result.status,
                    wall_s=round(wall, 1),
                    wall_ratio=round(wall / row["undisturbed_s"], 2),
                    kills_done=len(result_storm.kills),
                    kills_holding=len(resumes),
                    resume_median_s=round(statistics.median(resumes), 1) if resumes else None,
                    resume_max_s=round(max(resumes), 1) if resumes else None,
                    runs_lost=expected_runs
                    - len({r.run_id for r in runs if r.status == "succeeded"}),
                    sink_lines_doubled=sum(n - 1 for n in lines.values() if n > 1),
                    sink_lines_missing=items - len(lines),
                )
            finally:
                cluster.stop()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000, help="loop iterations")
    parser.add_argument("--fanout", type=int, default=1000, help="fan-out items")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--nap", type=float, default=0.1, help="seconds each loop Sleep takes")
    parser.add_argument(
        "--fanout-nap",
        type=float,
        default=0.5,
        help="seconds each fan-out Sleep takes (at 0.1 s the fan-out ends in ~9 s, "
        "before a storm of one kill a second is over)",
    )
    parser.add_argument(
        "--only", choices=["loop", "fan-out"], help="run one scenario (default: both)"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    nap = args.nap
    loop_s = args.items * (nap + 0.02)
    scenarios = {
        "loop": lambda: scenario(
            "loop",
            lambda sink, n: loop_flow(sink, n, nap),
            args.items,
            args.items * 4,
            args.kills,
            every_s=max(1.0, loop_s / (args.kills + 1)),
        ),
        "fan-out": lambda: scenario(
            "fan-out",
            lambda sink, n: fanout_flow(sink, n, args.fanout_nap),
            args.fanout,
            args.fanout * 3,
            args.kills,
            every_s=1.0,
        ),
    }
    rows = [run() for name, run in scenarios.items() if args.only in (None, name)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    bound = Settings().worker_timeout_s + 5
    table = Table(title=f"Worker SIGKILL storms (default settings; resume bound {bound:.0f} s)")
    columns = [
        "scenario",
        "items",
        "kills_done",
        "kills_holding",
        "resume_median_s",
        "resume_max_s",
        "runs_lost",
        "sink_lines_doubled",
        "sink_lines_missing",
        "undisturbed_s",
        "wall_s",
        "wall_ratio",
        "status",
    ]
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in rows:
        table.add_row(*(str(row.get(column, "")) for column in columns))
    Console(width=240).print(table)


if __name__ == "__main__":
    main()
