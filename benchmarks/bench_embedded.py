"""Node-run overhead of the embedded engine against Dask's local threaded scheduler.

Three graphs, each run by Segue (embedded, every run recorded in SQLite) and by
``dask.threaded.get`` in the same process:

* fan-out with fan-in: one source, N cheap nodes, a binary tree of adds (~2N nodes);
* a 2,000-node chain;
* a 3-node loop over 10,000 iterations (Range -> running sum with a feedback
  edge -> Output); Dask gets the same computation unrolled into one graph.

Targets (issue 3): Segue at least 2x Dask's throughput on each graph, and at
least 10,000 node runs per second on the fan-out. Figures are the best of a
few runs (machines here are noisy); ratios compare runs made side by side.

Run: ``make bench`` or ``python benchmarks/bench_embedded.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import operator
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dask.threaded import get as dask_get
from graphs import fan_out_fan_in  # beside this file

from orchestrator import Client, Workflow, WorkflowBuilder

FAN_WIDTH = 4_999  # 2 * 4,999 + 1 = 9,999 nodes: within the default 10,000-node limit
CHAIN = 2_000
LOOP_ITERATIONS = 10_000


# the graphs for Segue ------------------------------------------------------------------
def chain(length: int) -> Workflow:
    """``Constant -> Math -> Math -> ... -> Output``."""
    b = WorkflowBuilder(f"chain-{length}")
    b.node("n0", "Constant", config={"value": 0})
    previous = "n0.value"
    for i in range(1, length - 1):
        b.node(f"n{i}", "Math", config={"op": "add"})
        b.edge(previous, f"n{i}.a")
        previous = f"n{i}.result"
    b.node("end", "Output", config={"name": "end"})
    b.edge(previous, "end.value")
    wf = b.build()
    return _with_b_inputs(wf)


def _with_b_inputs(wf: Workflow) -> Workflow:
    # Math needs both inputs: feed every `b` from one Constant in the main stage.
    data = wf.to_dict()
    data["nodes"].append({"id": "one", "type": "Constant", "config": {"value": 1}})
    for node in data["nodes"]:
        if node["type"] == "Math":
            data["edges"].append({"from": "one.value", "to": f"{node['id']}.b"})
    return Workflow.from_dict(data)


def loop(iterations: int) -> Workflow:
    """A 3-node loop: Range -> running sum (feedback) -> Output (last value)."""
    b = WorkflowBuilder(f"loop-{iterations}")
    b.node("numbers", "Range", config={"stop": iterations})
    b.node("total", "Math", config={"op": "add"})
    b.node("final", "Output", config={"name": "final", "collect": "last"})
    b.edge("numbers.value", "total.a")
    b.edge("total.result", "total.b", feedback=True, initial=0)
    b.edge("total.result", "final.value")
    return b.build()


# the same graphs for Dask --------------------------------------------------------------
def dask_fan(width: int) -> tuple[dict[str, Any], str]:
    dsk: dict[str, Any] = {"src": 3}
    level = []
    for i in range(width):
        dsk[f"w{i}"] = (operator.mul, "src", "src")
        level.append(f"w{i}")
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            key = f"t{depth}_{j // 2}"
            dsk[key] = (operator.add, level[j], level[j + 1])
            nxt.append(key)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    dsk["total"] = (_identity, level[0])
    return dsk, "total"


def dask_chain(length: int) -> tuple[dict[str, Any], str]:
    dsk: dict[str, Any] = {"n0": 0, "one": 1}
    for i in range(1, length - 1):
        dsk[f"n{i}"] = (operator.add, f"n{i - 1}", "one")
    dsk["end"] = (_identity, f"n{length - 2}")
    return dsk, "end"


def dask_loop(iterations: int) -> tuple[dict[str, Any], str]:
    dsk: dict[str, Any] = {"s-1": 0}
    for i in range(iterations):
        dsk[f"r{i}"] = (_identity, i)
        dsk[f"s{i}"] = (operator.add, f"r{i}", f"s{i - 1}")
        dsk[f"o{i}"] = (_identity, f"s{i}")
    dsk["final"] = (_identity, f"o{iterations - 1}")
    return dsk, "final"


def _identity(value: Any) -> Any:
    return value


# measuring -----------------------------------------------------------------------------
def best(runs: int, work: Callable[[], tuple[int, Any]]) -> tuple[float, int, Any]:
    """(seconds, node runs, result) of the fastest of ``runs`` calls."""
    fastest = (float("inf"), 0, None)
    for _ in range(runs):
        start = time.perf_counter()
        count, result = work()
        elapsed = time.perf_counter() - start
        if elapsed < fastest[0]:
            fastest = (elapsed, count, result)
    return fastest


def segue_runner(client: Client, workflow: Workflow) -> Callable[[], tuple[int, Any]]:
    def work() -> tuple[int, Any]:
        job = client.submit(workflow)
        result = job.wait(timeout=600)  # returns once every run is written to the store
        assert result.status == "completed", result.error
        return 0, (job.id, result.outputs)

    return work


def dask_runner(graph: tuple[dict[str, Any], str]) -> Callable[[], tuple[int, Any]]:
    dsk, key = graph

    def work() -> tuple[int, Any]:
        return len(dsk), dask_get(dsk, key)

    return work


def measure(runs: int) -> list[dict[str, Any]]:
    cases = [
        ("fan-out + fan-in", fan_out_fan_in(FAN_WIDTH), dask_fan(FAN_WIDTH)),
        ("chain", chain(CHAIN), dask_chain(CHAIN)),
        ("3-node loop x 10k", loop(LOOP_ITERATIONS), dask_loop(LOOP_ITERATIONS)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as home, Client.embedded(home) as client:
        for name, workflow, graph in cases:
            segue_s, _, (job_id, outputs) = best(runs, segue_runner(client, workflow))
            segue_runs = len(client.runs(job_id))  # counted from the store, after timing
            dask_s, dask_tasks, value = best(runs, dask_runner(graph))
            segue_rate, dask_rate = segue_runs / segue_s, dask_tasks / dask_s
            rows.append(
                {
                    "graph": name,
                    "segue_runs": segue_runs,
                    "segue_s": round(segue_s, 4),
                    "segue_runs_per_s": round(segue_rate),
                    "dask_tasks": dask_tasks,
                    "dask_s": round(dask_s, 4),
                    "dask_tasks_per_s": round(dask_rate),
                    "ratio": round(segue_rate / dask_rate, 2),
                    "same_result": next(iter(outputs.values())) == value,
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    rows = measure(args.runs)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'graph':20s} {'segue runs/s':>13s} {'dask tasks/s':>13s} {'ratio':>6s}  same result")
    for r in rows:
        print(
            f"{r['graph']:20s} {r['segue_runs_per_s']:>13,} {r['dask_tasks_per_s']:>13,}"
            f" {r['ratio']:>5.2f}x  {r['same_result']}"
        )
    fan = rows[0]
    print()
    print(
        f"targets: ratio >= 2.0 on each graph: "
        f"{'PASS' if all(r['ratio'] >= 2 for r in rows) else 'MISS'}; "
        f"fan-out >= 10,000 runs/s recorded in SQLite: "
        f"{'PASS' if fan['segue_runs_per_s'] >= 10_000 else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
