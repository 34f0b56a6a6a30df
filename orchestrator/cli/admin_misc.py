"""``segue submit``, ``segue jobs wait``, ``segue events``, ``segue queues`` and
``segue nodes health``: a cluster's jobs from the outside."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import progress
from orchestrator.cli.admin_jobs import (
    BrokerOpt,
    Cluster,
    DatabaseOpt,
    JobArg,
    JsonOpt,
    connect,
    settings_from,
    styled,
)
from orchestrator.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    err,
    fail,
    out,
    print_issues,
    print_json,
)
from orchestrator.cli.run_cmd import InputOpt, _print_invalid, _report, parse_inputs
from orchestrator.cli.validate_cmd import _compile
from orchestrator.client import JobEvent, JobResult
from orchestrator.engine.journal import INPUT_KIND
from orchestrator.errors import Issue, WorkflowError
from orchestrator.runtime.states import JobStatus
from orchestrator.store import Store

EXIT_TIMEOUT = 124
"""``segue jobs wait --timeout``: the job had not ended in time (as ``timeout(1)``)."""

FileArg = Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON)", show_default=False)]


def submit(
    file: FileArg,
    inputs: InputOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the job and print its result")
    ] = False,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Submit a workflow to a cluster and print the job id.

    With --wait, wait and print the result as `segue run` does: exit 0 completed,
    1 failed; Ctrl-C stops waiting (exit 130) and leaves the job running.
    An invalid workflow or input exits 2 with located messages, as `segue validate`.
    """
    try:
        values = parse_inputs(inputs or [])
    except ValueError as exc:
        _invalid([Issue(str(exc))], file, wait, json_)
    plan, issues = _compile(file)
    if plan is None:
        _invalid(issues, file, wait, json_)
    with connect(broker_url, database_url) as cluster:
        try:
            job = cluster.client.submit(file, values)
        except WorkflowError as exc:  # the inputs do not fit the workflow
            found: list[Issue] = getattr(exc, "issues", None) or [Issue(str(exc))]
            _invalid(found, file, wait, json_)
        if not wait:
            if json_:
                print_json({"job": job.id})
            else:
                out.print(job.id)
                if sys.stderr.isatty():
                    err.print(f"[dim]follow it with: segue events {job.id} --follow[/dim]")
            return
        result = await_result(cluster, job.id, plan.workflow, None, json_)
    report(result, json_)


def _invalid(issues: list[Issue], file: Path, wait: bool, json_: bool) -> NoReturn:
    """Exit 2 with the issues as `segue validate` prints them (`segue run`'s object with
    --wait --json, so that `submit --wait --json` stands in for `run --json`)."""
    if json_ and wait:
        _print_invalid(issues)
    elif json_:
        print_json({"valid": False, "errors": [i.to_json() for i in issues]})
    else:
        print_issues(issues)
        out.print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {file}")
    raise typer.Exit(EXIT_INVALID)


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
    _report(result, json_)
    raise typer.Exit(EXIT_OK if result.status == "completed" else EXIT_FAILED)


def events(
    job: JobArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object a line")] = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Print a job's events from its start; with --follow, live until the job's final event."""
    with connect(broker_url, database_url) as cluster:
        cluster.job(job)
        stream = cluster.client.events(job) if follow else _recorded(cluster.store, job)
        try:
            for event in stream:
                if event.kind != INPUT_KIND:  # the coordinator's replay journal, not news
                    _print_event(event, json_)
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _recorded(store: Store, job: str) -> list[JobEvent]:
    found: list[JobEvent] = []
    after = 0
    while batch := store.read_events(job, after=after, limit=1000):
        after = batch[-1].seq
        found.extend(
            JobEvent(
                job=job,
                kind=r.kind,
                at=r.at,
                seq=r.seq,
                loop=r.loop,
                iteration=r.iteration,
                node=r.node,
                run_id=r.run_id,
                status=r.status,
                data=r.data,
            )
            for r in batch
        )
    return found


def _print_event(event: JobEvent, json_: bool) -> None:
    if json_:
        sys.stdout.write(json.dumps(event.model_dump(), default=str) + "\n")
        sys.stdout.flush()
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at % 1 * 1000):03d}"
    where = event.loop or ""
    if event.iteration is not None:
        where += f"[{event.iteration}]"
    if event.node:
        where += f" {event.node}"
    status = styled(event.status) if event.status else ""
    data = json.dumps(event.data, default=str) if event.data else ""
    if len(data) > 200:
        data = data[:200] + "…"
    out.print(
        f"[dim]{stamp}[/dim] {event.kind:<8} {where.strip()} {status} "
        f"[dim]{escape(data)}[/dim]".rstrip()
    )


def queues(
    json_: JsonOpt = False, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Show queue depths: queue-node queues per reader group, and the results waiting
    for the coordinator, per running job."""
    from orchestrator.channels import Channels
    from orchestrator.queues import KombuQueueBackend
    from orchestrator.store import open_store
    from orchestrator.store.errors import StoreError

    settings = settings_from(broker_url, database_url)
    try:
        store = open_store(settings.database_url, settings.home)
        running = [job.id for job in store.list_jobs(JobStatus.RUNNING.value, limit=1000)]
        store.close()
    except StoreError as exc:
        fail(f"{exc}\nCheck SEGUE_DATABASE_URL or --database-url.", EXIT_FAILED)
    # The backend logs a broker error with its traceback before it retries: right
    # for a service's log; here the failure is reported below, once.
    logging.getLogger("orchestrator.queues").setLevel(logging.CRITICAL)
    channels = Channels(settings.broker_url)
    try:
        with KombuQueueBackend(
            settings.broker_url, visibility_timeout_s=settings.visibility_timeout_s
        ) as backend:
            listing = backend.queues()
        results = channels.depth(running)
    except ValueError as exc:  # not a broker URL
        fail(f"{exc}; check SEGUE_BROKER_URL or --broker-url", EXIT_INVALID)
    except Exception as exc:  # each transport raises its own errors when the broker is away
        fail(
            f"cannot read queue depths from the broker at {settings.broker_url} "
            f"({type(exc).__name__}: {exc}); check SEGUE_BROKER_URL or --broker-url",
            EXIT_FAILED,
        )
    finally:
        channels.close()
    if json_:
        print_json({"queues": listing, "results": results})
        return
    table = Table(title="Queue-node queues")
    for column in ("job", "queue", "group", "depth"):
        table.add_column(column, justify="right" if column == "depth" else "left")
    for name, groups in listing.items():
        job, _, queue = name.rpartition(":")
        for group, depth in groups.items() or [("-", 0)]:
            table.add_row(job or "[dim]global[/dim]", queue, group, str(depth))
    out.print(table if listing else "[dim]no queue-node queues[/dim]")
    waiting = Table(title="Results waiting for the coordinator")
    waiting.add_column("queue")
    waiting.add_column("depth", justify="right")
    for name, depth in results.items():
        waiting.add_row(name, str(depth))
    out.print(waiting if results else "[dim]no running jobs[/dim]")


def health(
    job: JobArg,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Show each node's health in a job: healthy, retrying or failing, with run counts."""
    with connect(broker_url, database_url) as cluster:
        cluster.job(job)
        report_ = cluster.client.node_health(job)
    if json_:
        print_json(report_)
        return
    table = Table(title=f"Node health of job {job}")
    for column in ("node", "health", "succeeded", "failed", "error rate"):
        table.add_column(column, justify="left" if column in ("node", "health") else "right")
    style = {"healthy": "green", "retrying": "yellow", "failing": "red"}
    for node, info in report_.items():
        colour = style.get(str(info.get("health")), "")
        table.add_row(
            node,
            f"[{colour}]{info.get('health')}[/{colour}]",
            str(info.get("succeeded", 0)),
            str(info.get("failed", 0)),
            f"{float(info.get('error_rate', 0.0)):.0%}",
        )
    out.print(table if report_ else "[dim]no node has run yet[/dim]")
