"""A :class:`~orchestrator.metrics.snapshot.Snapshot` as Prometheus metric families.

Pure: the same snapshot always gives the same series. Labels come from
workflow definitions and the cluster's shape (workflow, loop and node names,
node types, states, pools, queue names), never a job or run id, so their
number stays bounded however many jobs run. A state gauge lists every state
of each key it has seen, zeros included, so an alert on one state never
waits for its series to appear.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from orchestrator.metrics.snapshot import DURATION_BUCKETS, Snapshot
from orchestrator.states import Health, JobStatus, LoopStatus, RunStatus
from orchestrator.store.base import LoopTally, RunTally

RUN_ENDS = tuple(s.value for s in RunStatus if s.terminal)
"""The ``status`` values of ``segue_node_runs_total``: how a run ended."""
TIMED = frozenset({RunStatus.SUCCEEDED.value, RunStatus.FAILED.value})
"""The runs ``segue_node_duration_seconds`` observes: those that ran to an outcome."""
WORKER_STATES = ("alive", "dead", "stopped")


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every series of DESIGN section 6, plus ``segue_metrics_source_up``."""
    tallies = snapshot.tallies
    loops = tallies.loops if tallies is not None else ()
    runs = tallies.runs if tallies is not None else ()
    yield from _loops(loops)
    yield from _runs(runs)
    yield _jobs(tallies.jobs if tallies is not None else None)
    yield _states(
        "segue_node_health",
        "Running jobs in which a node has each health (healthy, retrying, failing).",
        ["workflow", "node", "health"],
        snapshot.health,
        [h.value for h in Health],
    )
    yield _states(
        "segue_workers",
        "Worker processes by Celery pool: alive, dead (silent past worker_timeout_s) "
        "or stopped (shut down cleanly).",
        ["pool", "state"],
        snapshot.workers,
        WORKER_STATES,
    )
    depth = GaugeMetricFamily(
        "segue_queue_depth",
        "Messages waiting: a queue node's queue by name (summed over running jobs, "
        "fullest reader group), celery/<queue> for tasks no worker took yet, "
        "segue/results for results the coordinator has not recorded.",
        labels=["queue"],
    )
    for name, waiting in sorted((snapshot.queues or {}).items()):
        depth.add_metric([name], waiting)
    yield depth
    up = GaugeMetricFamily(
        "segue_metrics_source_up",
        "1 when the last scrape could read the source (store, broker), else 0.",
        labels=["source"],
    )
    for source, ok in sorted(snapshot.sources.items()):
        up.add_metric([source], 1.0 if ok else 0.0)
    yield up
    yield from _gpus(snapshot.gpus)


def _gpus(gpus: Iterable[dict[str, object]]) -> Iterator[Metric]:
    mib = 1024 * 1024
    memory = GaugeMetricFamily(
        "segue_gpu_memory_bytes",
        "GPU memory of each device a live GPU worker serves: total, free (at its last "
        "heartbeat) and usable (what runs may declare: total minus the reserve).",
        labels=["host", "device", "kind"],
    )
    peak = GaugeMetricFamily(
        "segue_gpu_run_peak_bytes",
        "Peak GPU memory allocated by the latest run on each device "
        "(torch.cuda.max_memory_allocated, reset per run).",
        labels=["host", "device"],
    )
    runs = CounterMetricFamily(
        "segue_gpu_runs",
        "GPU runs each device's worker process ran since it started.",
        labels=["host", "device"],
    )
    for gpu in gpus:
        if "index" not in gpu:
            continue  # serving the gpu queue on the CPU: no device
        host = str(gpu.get("host", ""))
        device = f"{gpu['index']}:{gpu.get('name', '')}"
        for kind in ("total", "free", "usable"):
            value = gpu.get(f"{kind}_mb")
            if isinstance(value, int | float):
                memory.add_metric([host, device, kind], value * mib)
        last = gpu.get("last_peak_mb")
        if isinstance(last, int | float):
            peak.add_metric([host, device], last * mib)
        count = gpu.get("runs")
        if isinstance(count, int):
            runs.add_metric([host, device], count)
    yield from (memory, peak, runs)


def _loops(tallies: Iterable[LoopTally]) -> Iterator[Metric]:
    iterations = CounterMetricFamily(
        "segue_loop_iterations",
        "Loop iterations finished (failed ones included), over every job of the store.",
        labels=["workflow", "loop"],
    )
    errors = CounterMetricFamily(
        "segue_loop_iteration_errors",
        "Loop iterations that failed, over every job of the store.",
        labels=["workflow", "loop"],
    )
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    states: Counter[tuple[str, ...]] = Counter()
    for tally in tallies:
        key = (tally.workflow, tally.loop)
        sums[key][0] += tally.iterations
        sums[key][1] += tally.failed_iterations
        states[(*key, tally.status)] += tally.loops
    for key, (done, failed) in sorted(sums.items()):
        iterations.add_metric(list(key), done)
        errors.add_metric(list(key), failed)
    yield iterations
    yield errors
    yield _states(
        "segue_loop_state",
        "Loops in each state, over every job of the store.",
        ["workflow", "loop", "state"],
        states,
        [s.value for s in LoopStatus],
    )


def _runs(tallies: Iterable[RunTally]) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "segue_node_runs",
        "Node runs that ended, by how they ended, over every job of the store.",
        labels=["workflow", "type", "status"],
    )
    duration = HistogramMetricFamily(
        "segue_node_duration_seconds",
        "How long node runs that succeeded or failed ran (their last attempt).",
        labels=["workflow", "type"],
    )
    counts: Counter[tuple[str, ...]] = Counter()
    timed: dict[tuple[str, str], list[float]] = {}
    for tally in tallies:
        key = (tally.workflow, tally.type_name)
        counts[(*key, tally.status)] += tally.runs
        if tally.status in TIMED:
            sums = timed.setdefault(key, [0.0] * (len(DURATION_BUCKETS) + 2))
            for i, n in enumerate(tally.buckets):
                sums[i] += n
            sums[-2] += tally.timed
            sums[-1] += tally.seconds
    for labels, value in _with_zeros(counts, RUN_ENDS):
        total.add_metric(labels, value)
    for key, sums in sorted(timed.items()):
        buckets = [(_le(b), sums[i]) for i, b in enumerate(DURATION_BUCKETS)]
        duration.add_metric(list(key), [*buckets, ("+Inf", sums[-2])], sums[-1])
    yield total
    yield duration


def _le(bound: float) -> str:
    """A bucket bound as Prometheus clients write it (``1.0``, ``0.005``)."""
    return repr(float(bound))


def _jobs(counts: dict[str, int] | None) -> Metric:
    jobs = GaugeMetricFamily("segue_jobs", "Jobs in each state.", labels=["state"])
    if counts is not None:
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
    return jobs


def _states(
    name: str,
    help_text: str,
    labels: list[str],
    counts: Counter[tuple[str, ...]],
    states: Iterable[str],
) -> Metric:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for key, value in _with_zeros(counts, tuple(states)):
        family.add_metric(key, value)
    return family


def _with_zeros(
    counts: Counter[tuple[str, ...]], states: tuple[str, ...]
) -> Iterator[tuple[list[str], int]]:
    """Each key's count in every one of ``states`` (its last label), zeros included."""
    for key in sorted({key[:-1] for key in counts}):
        for state in states:
            yield [*key, state], counts[(*key, state)]
