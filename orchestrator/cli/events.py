"""``segue events``: a job's events, recorded or live."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import BrokerOpt, DatabaseOpt, JobArg, connect, styled
from orchestrator.cli.output import EXIT_INTERRUPTED, out
from orchestrator.client import JobEvent
from orchestrator.driver.journal import INPUT_KIND
from orchestrator.store import Store


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
