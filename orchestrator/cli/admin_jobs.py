"""``segue jobs``: list, show and cancel a cluster's jobs (``jobs wait`` is in
:mod:`orchestrator.cli.admin_misc`, beside ``segue submit --wait``).

Also the connection every admin command shares (:func:`connect`): settings
from ``SEGUE_*`` variables or ``--broker-url``/``--database-url``, a cluster
client, and the store it reads; unknown jobs and unreachable services end the
command with a message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from rich import box
from rich.table import Table

from orchestrator.cli.output import (
    EXIT_FAILED,
    EXIT_INVALID,
    fail,
    out,
    print_json,
)
from orchestrator.client import Client
from orchestrator.errors import UnknownJobError, UnknownLoopError
from orchestrator.runtime.states import JobStatus
from orchestrator.settings import Settings
from orchestrator.store import JobRecord, LoopRecord, Store, StoreError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker-url", help="Broker URL (default: $SEGUE_BROKER_URL)", show_default=False
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="State store URL (default: $SEGUE_DATABASE_URL)", show_default=False
    ),
]
JobArg = Annotated[str, typer.Argument(help="Job id (see `segue jobs list`)", show_default=False)]

_STYLE = {"completed": "green", "running": "cyan", "failed": "red", "cancelled": "magenta"}

app = typer.Typer(
    help="List, inspect, wait for and cancel jobs on a cluster.", no_args_is_help=True
)


# connection -------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """An open connection to a cluster: the client and the store it reads."""

    settings: Settings
    client: Client
    store: Store

    def job(self, job_id: str) -> JobRecord:
        """The stored job, or exit 2 naming it."""
        record = self.store.get_job(job_id)
        if record is None:
            unknown_job(job_id)
        return record


def unknown_job(job_id: str) -> NoReturn:
    """Exit 2: there is no such job."""
    fail(f"no job {job_id!r} in the store; `segue jobs list` lists the jobs", EXIT_INVALID)


def settings_from(broker_url: str | None, database_url: str | None) -> Settings:
    """``SEGUE_*`` settings with the command line's URLs on top; exit 2 when they are invalid."""
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"invalid SEGUE_* setting: {exc}", EXIT_INVALID)
    updates = {
        key: value
        for key, value in (("broker_url", broker_url), ("database_url", database_url))
        if value is not None
    }
    return settings.model_copy(update=updates)


@contextmanager
def connect(broker_url: str | None, database_url: str | None) -> Iterator[Cluster]:
    """Open a cluster client; unknown jobs or loops exit 2, unreachable services exit 1."""
    settings = settings_from(broker_url, database_url)
    try:
        from orchestrator.client.cluster import ClusterBackend  # the engine, only when used

        backend = ClusterBackend(settings)
    except StoreError as exc:
        fail(f"{exc}\nCheck SEGUE_DATABASE_URL or --database-url.", EXIT_FAILED)
    client = Client(backend)
    try:
        yield Cluster(settings, client, backend.store)
    except (UnknownJobError, UnknownLoopError) as exc:
        fail(str(exc), EXIT_INVALID)
    except BrokerError as exc:
        fail(
            f"cannot reach the broker at {settings.broker_url} ({exc}); "
            "check SEGUE_BROKER_URL or --broker-url",
            EXIT_FAILED,
        )
    finally:
        client.close()


# formatting -------------------------------------------------------------------------
def when(at: float | None, short: bool = False) -> str:
    """A stored timestamp as local time (``short``: without the year), or ``-``."""
    form = "%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S"
    return time.strftime(form, time.localtime(at)) if at else "-"


def styled(status: str) -> str:
    """A status in its colour."""
    style = _STYLE.get(status, "yellow")
    return f"[{style}]{status}[/{style}]"


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


_JOB_FIELDS = ("id", "workflow", "status", "created_at", "started_at", "finished_at", "error")
_LOOP_FIELDS = ("name", "status", "iterations", "failed_iterations")


def job_json(record: JobRecord) -> dict[str, Any]:
    """The fields of ``segue jobs list --json``."""
    return {key: getattr(record, key) for key in _JOB_FIELDS}


def loop_json(record: LoopRecord, desired: bool = False) -> dict[str, Any]:
    """``{"name", "status", "iterations", "failed_iterations"}`` (and ``desired``)."""
    fields = (*_LOOP_FIELDS, "desired") if desired else _LOOP_FIELDS
    return {key: getattr(record, key) for key in fields}


def loops_table(loops: list[dict[str, Any]], title: str) -> Table:
    """Loops (as :func:`loop_json` with ``desired``) as a table; a pending request shows."""
    table = Table(title=title)
    for column in ("loop", "status", "requested", "iterations", "failed"):
        table.add_column(column, justify="left" if column in ("loop", "status") else "right")
    for loop in loops:
        requested = loop["desired"] if loop["desired"] not in ("running", loop["status"]) else ""
        failed = str(loop["failed_iterations"] or "")
        table.add_row(
            loop["name"], styled(loop["status"]), requested, str(loop["iterations"]), failed
        )
    return table


# commands ---------------------------------------------------------------------------
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
    for r in records:
        error = r.error.splitlines()[0][:120] if r.error else ""
        times = (when(r.created_at, short=True), when(r.finished_at, short=True))
        table.add_row(r.id, r.workflow, styled(r.status), *times, _escape(error))
    out.print(table)


@app.command("show")
def show(
    job: JobArg,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Show a job: status, times, inputs, outputs, its loops, node runs by status, error."""
    with connect(broker_url, database_url) as cluster:
        record = cluster.job(job)
        loops = cluster.store.list_loops(job)
        runs = cluster.store.list_runs(job)
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
    }
    if json_:
        print_json(data)
        return
    _print_job(data)


def _print_job(data: dict[str, Any]) -> None:
    out.print(f"job [bold]{data['id']}[/bold] ({data['workflow']}): {styled(data['status'])}")
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
    if data["error"]:
        out.print(f"[red]error:[/red] {_escape(data['error'])}")


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
