"""``segue jobs``: list, show, wait for and cancel a cluster's jobs.

``segue submit --wait`` waits as ``segue jobs wait`` does (:func:`await_result`)
and prints the result the same way (:func:`report`).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from orchestrator.cli import progress
from orchestrator.cli.common import (
    BrokerOpt,
    Cluster,
    DatabaseOpt,
    JobArg,
    JsonOpt,
    connect,
    job_json,
    loop_json,
    loops_table,
    styled,
    when,
)
from orchestrator.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    err,
    fail,
    out,
    plural,
    print_json,
)
from orchestrator.cli.run import print_result
from orchestrator.client import JobResult
from orchestrator.driver import orphaned
from orchestrator.gpufacts import gpu_summary
from orchestrator.states import JobStatus
from orchestrator.store import RunRecord, Store
from orchestrator.store.base import EventRecord

EXIT_TIMEOUT = 124
"""``segue jobs wait --timeout``: the job had not ended in time (as ``timeout(1)``)."""
FAILURES_SHOWN = 5
"""Failed runs ``segue jobs show`` prints with their tracebacks (``--json`` has them all)."""
FAILING = ("failed", "retrying")
IN_FLIGHT = ("queued", "running")
"""Statuses of runs whose latest attempt failed: they hold an error and its traceback."""

app = typer.Typer(
    help="List, inspect, wait for and cancel jobs on a cluster.", no_args_is_help=True
)


@app.command("list")
def list_jobs(
    status: Annotated[
        str | None, typer.Option("--status", help="Only jobs with this status")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many")] = 50,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """List jobs, newest first."""
    if status is not None and status not in {s.value for s in JobStatus}:
        known = ", ".join(s.value for s in JobStatus)
        fail(f"unknown job status {status!r}; use one of: {known}", EXIT_INVALID)
    with connect(broker_url, database_url) as cluster:
        records = cluster.store.list_jobs(status, limit)
    if json_:
        print_json([job_json(r) for r in records])
        return
    # Ids, statuses and times are never cut; the workflow name and error give way.
    table = Table(title=f"Jobs ({len(records)})", box=box.SIMPLE_HEAD, show_edge=False)
    for column, width in (("job", 16), ("workflow", 8), ("status", 9)):
        table.add_column(column, no_wrap=True, min_width=width, overflow="ellipsis")
    for column in ("created", "finished"):
        table.add_column(column, no_wrap=True, min_width=14)
    table.add_column("error", overflow="ellipsis", no_wrap=True, style="red")
    now = time.time()
    lost = 0
    for r in records:
        error = r.error.splitlines()[0][:120] if r.error else ""
        times = (when(r.created_at, short=True), when(r.finished_at, short=True))
        status = r.status
        if orphaned(r, now):  # never shown running: nothing runs it
            status, lost = "orphaned", lost + 1
        table.add_row(r.id, r.workflow, styled(status), *times, _escape(error))
    out.print(table)
    if lost:
        out.print(
            f"{plural(lost, 'job')} orphaned: the process that drove it is gone; the next "
            "`segue run`, Client.embedded or coordinator on this store resumes it"
        )


@app.command("show")
def show(
    job: JobArg,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Show a job: status, times, inputs, outputs, its loops, node runs by status, error,
    and the error and traceback of each failed (or retrying) run."""
    with connect(broker_url, database_url) as cluster:
        record = cluster.job(job)
        loops = cluster.store.list_loops(job)
        runs = cluster.store.list_runs(job)
        gpu = gpu_summary(_events(cluster.store, job))
    nodes: dict[str, Counter[str]] = {}
    for run in runs:
        nodes.setdefault(run.node_id, Counter())[run.status] += 1
    data = {
        **job_json(record),
        "inputs": record.inputs,
        "outputs": record.outputs,
        "cancel_requested": record.cancel_requested,
        "loops": [loop_json(loop, desired=True) for loop in loops],
        "runs": dict(Counter(run.status for run in runs)),
        "nodes": {node: dict(counts) for node, counts in nodes.items()},
        "failed_runs": [_failure_json(run) for run in runs if run.status in FAILING],
        "gpu": gpu,
        "now": [_now_json(run) for run in runs if run.status in IN_FLIGHT],
    }
    if json_:
        print_json(data)
        return
    _print_job(data)


def _print_job(data: dict[str, Any]) -> None:
    out.print(f"job [bold]{data['job']}[/bold] ({data['workflow']}): {styled(data['status'])}")
    out.print(
        f"  created {when(data['created_at'])} · started {when(data['started_at'])}"
        f" · finished {when(data['finished_at'])}"
    )
    if data["cancel_requested"] and data["status"] not in ("cancelled", "completed", "failed"):
        out.print("  [magenta]cancel requested[/magenta]")
    for label in ("inputs", "outputs"):
        for name, value in data[label].items():
            text = _escape(repr(value))
            out.print(f"  {label[:-1]} {name} = {text if len(text) < 300 else text[:300] + '…'}")
    out.print(loops_table(data["loops"], "Loops"))
    statuses = sorted(data["runs"])
    nodes = Table(title="Node runs")
    nodes.add_column("node")
    for status in statuses:
        nodes.add_column(status, justify="right")
    for node, counts in data["nodes"].items():
        nodes.add_row(node, *(str(counts.get(s, "")) for s in statuses))
    if data["nodes"]:
        out.print(nodes)
    _print_gpu(data["gpu"])
    _print_now(data["now"])
    if data["error"]:
        out.print(f"[red]error:[/red] {_escape(data['error'])}")
    _print_failures(data["failed_runs"])


def _events(store: Store, job: str) -> Iterator[EventRecord]:
    after = 0
    while batch := store.read_events(job, after):
        yield from batch
        after = batch[-1].seq


def _print_gpu(gpu: dict[str, dict[str, Any]]) -> None:
    if not gpu:
        return
    table = Table(title="GPU runs")
    for column in ("node", "runs", "device", "peak MiB (max)", "peak MiB (last)"):
        table.add_column(column, justify="left" if column in ("node", "device") else "right")
    for node, facts in gpu.items():
        peaks = [facts["peak_mb_max"], facts["peak_mb_last"]]
        table.add_row(
            node,
            str(facts["runs"]),
            _escape(", ".join(facts["devices"])),
            *("-" if p is None else f"{p:.1f}" for p in peaks),
        )
    out.print(table)


def _run_json(run: RunRecord) -> dict[str, Any]:
    """What names a run and its state in ``segue jobs show --json``."""
    return {
        "run_id": run.run_id,
        "loop": run.loop,
        "iteration": run.iteration,
        "node": run.node_id,
        "status": run.status,
        "attempt": run.attempt,
    }


def _now_json(run: RunRecord) -> dict[str, Any]:
    since = run.started_at if run.status == "running" else run.queued_at
    return {**_run_json(run), "worker": run.worker, "since": since}


def _print_now(now: list[dict[str, Any]]) -> None:
    """The job's current runs: queued or running for a while (DESIGN 4, States)."""
    if not now:
        return
    table = Table(title="Now")
    for column in ("node", "where", "status", "attempt", "worker", "since"):
        table.add_column(column)
    for run in now:
        where = f"{run['loop']}[{run['iteration']}]" if run["loop"] != "main" else "main"
        table.add_row(
            run["node"],
            where,
            styled(run["status"]),
            str(run["attempt"]),
            run["worker"] or "-",
            when(run["since"], short=True),
        )
    out.print(table)


def _failure_json(run: RunRecord) -> dict[str, Any]:
    return {**_run_json(run), "error": run.error, "traceback": run.traceback}


def _print_failures(failures: list[dict[str, Any]]) -> None:
    """Each failed run's error, then its traceback (highlighted on a terminal)."""
    for failure in failures[:FAILURES_SHOWN]:
        where = f"{failure['loop']}[{failure['iteration']}]" if failure["loop"] != "main" else ""
        out.print(
            f"\n[bold red]{failure['status']}[/bold red] [bold]{failure['node']}[/bold]"
            f"{' in ' + where if where else ''}, attempt {failure['attempt']}"
            f" [dim]({failure['run_id']})[/dim]"
        )
        out.print(f"  [red]{_escape(failure['error'] or 'no error recorded')}[/red]")
        if failure["traceback"]:
            out.print(_highlighted(failure["traceback"]))
    hidden = len(failures) - FAILURES_SHOWN
    if hidden > 0:
        out.print(
            f"\n… and {plural(hidden, 'more failed run')}; `segue jobs show --json` lists them all"
        )


def _highlighted(traceback: str) -> Text:
    """A traceback, indented, highlighted as Python's (on a terminal); never cut."""
    text = Syntax("", "pytb", theme="ansi_dark", background_color="default").highlight(
        traceback.rstrip()
    )
    text.rstrip()  # highlighting ends the text with a newline
    return Text("\n").join(Text("  ") + line for line in text.split("\n"))


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


@app.command("cancel")
def cancel(job: JobArg, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None) -> None:
    """Cancel a job: its loops end cancelled. A job that already ended is left as it is."""
    with connect(broker_url, database_url) as cluster:
        record = cluster.job(job)
        if JobStatus(record.status).terminal:
            out.print(f"job {job} already ended ({styled(record.status)}); nothing to cancel")
            return
        cluster.client.cancel(job)
    out.print(f"cancel requested for job {job}; `segue jobs wait {job}` waits for it to end")


@app.command("wait")
def wait(
    job: JobArg,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Give up after this many seconds")
    ] = None,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Wait for a job to end and print how it ended, like `segue run`.

    Exit 0 completed, 1 failed or cancelled, 124 still running after --timeout,
    130 on Ctrl-C (the job keeps running).
    """
    with connect(broker_url, database_url) as cluster:
        record = cluster.job(job)
        result = await_result(cluster, job, record.workflow, timeout, json_)
    report(result, json_)


def await_result(
    cluster: Cluster, job_id: str, workflow: str, timeout: float | None, json_: bool
) -> JobResult:
    """Wait for the job's result, with live progress on a terminal (not with ``--json``).

    Ctrl-C leaves the job running and exits 130; a timeout exits 124.
    """
    try:
        if not json_ and timeout is None and sys.stderr.isatty():
            progress.follow(cluster.client.events(job_id), workflow)
        return cluster.client.wait(job_id, timeout)
    except KeyboardInterrupt:
        err.print(
            f"\nstopped waiting; job {job_id} keeps running. "
            f"Cancel it with: segue jobs cancel {job_id}"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except TimeoutError:
        fail(f"job {job_id} has not ended after {timeout:g}s; it keeps running", EXIT_TIMEOUT)


def report(result: JobResult, json_: bool) -> NoReturn:
    """Print ``result`` as `segue run` does and exit 0 when it completed, else 1."""
    print_result(result, json_)
    raise typer.Exit(EXIT_OK if result.status == "completed" else EXIT_FAILED)
