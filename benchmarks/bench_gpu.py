"""GPU pool through the cluster: how busy one device stays, and what packing gains.

The benchmark starts its own cluster (a PostgreSQL database and a Redis
database of its own, as ``bench_celery.py``): one ``segue coordinator``, one
thread worker (the ``Range`` producer) and ``segue worker --gpu --gpus 0``.
It finds the device the way the worker does (NVML, or torch in a child
process); on a machine without a GPU the GPU worker serves the gpu queue on the
CPU build of torch, and the benchmark says so.

* busy - 200 runs of a fixed ``TorchMatmul`` (``--size``, float32) on one
  device, dispatched non-blocking from a ``Range`` loop (up to 16 ahead) so
  the worker has the next one whenever the producer keeps up. From the
  recorded runs (the worker's own start and end of each ``run``): the device's
  busy fraction (time inside runs / first start to last end) and the idle gap
  between consecutive runs (median, p99). Targets:
  median gap <= 5 ms, >= 90 % busy on 100 ms runs.
* packing - ``--rounds`` jobs of 8 independent small matmuls (all dispatched
  at once; ``--small``, each declaring
  ``vram_mb`` = 1/8 of what the device offers) on a worker started with
  ``--gpu-share`` against one without: runs per second from the first start to
  the last end. Target: packed >= 3x one at a time.

Run: ``python benchmarks/bench_gpu.py [--size N] [--small N] [--json]``.
Needs PostgreSQL and Redis on 127.0.0.1 (``scripts/ensure-services.sh``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from bench_celery import Processes, segue_cluster  # beside this file
from report import Column, services_missing, table, verdict  # beside this file

from orchestrator import Client, Workflow, WorkflowBuilder
from orchestrator.views import RunInfo
from workers.gpu.devices import GpuDevice, default_probe

RUNS = 200
PACKED = 8
RESERVE_MB = 1024
JOB_TIMEOUT_S = 900.0


def busy_workflow(runs: int, size: int) -> Workflow:
    b = WorkflowBuilder("bench-gpu-busy")
    seeds = b.node("seeds", "Range", config={"stop": runs})
    mm = b.node("mm", "TorchMatmul", config={"size": size}, blocking=False)
    b.edge(seeds["value"], mm["seed"])
    b.loop("seeds", max_inflight_nonblocking=16)
    return b.build()


def packing_workflow(size: int, vram_mb: int) -> Workflow:
    # Eight independent nodes of the main stage: all dispatched at once.
    b = WorkflowBuilder("bench-gpu-packing")
    for i in range(PACKED):
        config = {"size": size}
        b.node(f"mm{i}", "TorchMatmul", config=config, resources={"vram_mb": vram_mb})
    return b.build()


def timed_runs(client: Client, workflow: Workflow) -> list[RunInfo]:
    job = client.submit(workflow)
    result = job.wait(JOB_TIMEOUT_S)
    if result.status != "completed":
        raise RuntimeError(f"job {job.id} ended {result.status}: {result.error}")
    runs = [r for r in job.runs() if r.node.startswith("mm") and r.status == "succeeded"]
    return sorted(runs, key=lambda r: r.started_at or 0.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def busy_figures(runs: list[RunInfo]) -> dict[str, Any]:
    spans = [(r.started_at or 0.0, r.finished_at or 0.0) for r in runs]
    gaps = [max(0.0, b[0] - a[1]) * 1000 for a, b in itertools.pairwise(spans)]
    inside = sum(end - start for start, end in spans)
    wall = spans[-1][1] - spans[0][0]
    return {
        "runs": len(runs),
        "run_ms_median": round(statistics.median((e - s) * 1000 for s, e in spans), 2),
        "busy_fraction": round(inside / wall, 3) if wall > 0 else 0.0,
        "idle_gap_ms_median": round(statistics.median(gaps), 2) if gaps else 0.0,
        "idle_gap_ms_p99": round(percentile(gaps, 0.99), 2) if gaps else 0.0,
        "workers": len({r.worker for r in runs}),
    }


def throughput(client: Client, workflow: Workflow, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        runs = timed_runs(client, workflow)
        wall = max(r.finished_at or 0.0 for r in runs) - min(r.started_at or 0.0 for r in runs)
        best = max(best, len(runs) / wall if wall > 0 else 0.0)
    return best


@contextmanager
def cluster(root: Path) -> Iterator[tuple[Client, Processes]]:
    with ExitStack() as stack:
        client, processes = segue_cluster(stack, root)
        thread_worker = ["worker", "--pool=thread", "--concurrency=4"]
        processes.start("thread-worker", ["orchestrator.cli", *thread_worker])
        processes.wait_beating("coordinator", "thread-worker")
        yield client, processes


def start_gpu_worker(processes: Processes, name: str, *extra: str) -> None:
    args = ["worker", "--gpu", "--gpu-reserve-mb", str(RESERVE_MB), *extra]
    processes.start(name, ["orchestrator.cli", *args])
    processes.wait_beating(name)


def stop_worker(processes: Processes, name: str) -> None:
    process = processes.running.pop(name)
    process.terminate()
    process.wait(60)


def measure(
    client: Client, processes: Processes, device: GpuDevice | None, args: argparse.Namespace
) -> dict[str, Any]:
    pick = ["--gpus", str(device.index)] if device else []
    usable = (device.total_mb - RESERVE_MB) if device else 8 * 512
    small_vram = max(1, usable // PACKED)
    start_gpu_worker(processes, "gpu-one", *pick)
    timed_runs(client, busy_workflow(4, args.size))  # warm-up: imports, CUDA context
    busy = busy_figures(timed_runs(client, busy_workflow(args.runs, args.size)))
    small = packing_workflow(args.small, small_vram)
    timed_runs(client, small)
    alone = throughput(client, small, args.rounds)
    stop_worker(processes, "gpu-one")
    start_gpu_worker(processes, "gpu-shared", *pick, "--gpu-share")
    timed_runs(client, small)
    packed = throughput(client, small, args.rounds)
    stop_worker(processes, "gpu-shared")
    return {
        "device": device.name if device else "cpu (no GPU found: CPU build of torch)",
        "device_total_mb": device.total_mb if device else None,
        "busy": {"size": args.size, **busy},
        "packing": {
            "size": args.small,
            "vram_mb_each": small_vram,
            "one_at_a_time_runs_per_s": round(alone, 2),
            "packed_runs_per_s": round(packed, 2),
            "speedup": round(packed / alone, 2) if alone else None,
        },
    }


GPU_COLUMNS = (
    Column("case", "case", align="<"),
    Column("figure", "figure", align="<"),
    Column("value", lambda r: None if r["value"] is None else format(r["value"], r["fmt"])),
    Column("unit", "unit", align="<"),
    Column("target", "target", align="<"),
    Column("verdict", lambda r: verdict(r.get("pass"))),
)


def table_rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures as rows of :data:`GPU_COLUMNS`, each against its target."""
    busy, packing = figures["busy"], figures["packing"]
    fraction, gap, speedup = busy["busy_fraction"], busy["idle_gap_ms_median"], packing["speedup"]

    def row(case: str, figure: str, value: Any, fmt: str, unit: str) -> dict[str, Any]:
        return {"case": case, "figure": figure, "value": value, "fmt": fmt, "unit": unit}

    return [
        row("busy", "run (median)", busy["run_ms_median"], ".2f", "ms"),
        {
            **row("busy", "busy fraction", fraction * 100, ".1f", "%"),
            "target": ">= 90 % (100 ms runs)",
            "pass": fraction >= 0.9,
        },
        {**row("busy", "idle gap median", gap, ".2f", "ms"), "target": "<= 5 ms", "pass": gap <= 5},
        row("busy", "idle gap p99", busy["idle_gap_ms_p99"], ".2f", "ms"),
        row("packing", "one at a time", packing["one_at_a_time_runs_per_s"], ".2f", "runs/s"),
        row("packing", "packed (--gpu-share)", packing["packed_runs_per_s"], ".2f", "runs/s"),
        {
            **row("packing", "speedup", speedup, ".2f", "x"),
            "target": ">= 3x",
            "pass": None if speedup is None else speedup >= 3,
        },
    ]


def print_table(figures: dict[str, Any]) -> None:
    busy, packing = figures["busy"], figures["packing"]
    print(f"device: {figures['device']}")
    if figures["device_total_mb"] is None:
        print("  (CPU-only machine: the GPU worker serves the gpu queue on the CPU build)")
    print(
        f"busy: {busy['runs']} runs of a {busy['size']}x{busy['size']} float32 matmul; "
        f"packing: {PACKED} runs of a {packing['size']}x{packing['size']} matmul, "
        f"vram_mb {packing['vram_mb_each']} each"
    )
    print(table(GPU_COLUMNS, table_rows(figures)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of the busy case")
    parser.add_argument(
        "--size", type=int, help="busy matmul size (default: 12288 GPU, 1536 CPU: ~100 ms runs)"
    )
    parser.add_argument("--small", type=int, help="packed matmul size (default: 1024 GPU, 256 CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="packing jobs per mode (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args()
    devices = default_probe().devices()
    device = devices[0] if devices else None
    args.size = args.size or (12288 if device else 1536)
    args.small = args.small or (1024 if device else 256)
    try:
        with ExitStack() as stack:
            root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            root.mkdir(parents=True, exist_ok=True)
            client, processes = stack.enter_context(cluster(root))
            started = time.monotonic()
            figures = measure(client, processes, device, args)
            figures["seconds"] = round(time.monotonic() - started, 1)
    except (psycopg.OperationalError, redis.ConnectionError) as exc:
        print(services_missing("bench_gpu", exc), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
