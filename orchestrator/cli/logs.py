"""``segue logs``: a job's run logs and the tracebacks of its failed runs (DESIGN 3.16)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import BrokerOpt, DatabaseOpt, JobArg, connect
from orchestrator.cli.output import EXIT_INTERRUPTED, EXIT_INVALID, fail, out
from orchestrator.client import LogLine
from orchestrator.errors import NotInJobError
from orchestrator.logs import LEVELS, LogFollower
from orchestrator.states import JobStatus

FOLLOW_POLL_S = 0.5
_LEVEL_STYLE = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def logs(
    job: JobArg,
    loop: Annotated[str | None, typer.Option("--loop", help="Only this loop's runs")] = None,
    node: Annotated[str | None, typer.Option("--node", help="Only this node's runs")] = None,
    level: Annotated[
        str | None,
        typer.Option("--level", help=f"Only records at this level or above: {', '.join(LEVELS)}"),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records until the job ends")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object a line")] = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Print a job's run logs (each run's logger, logging and stdout/stderr) and the
    tracebacks of its failed runs; with --follow, new ones until the job ends."""
    with connect(broker_url, database_url) as cluster:
        cluster.job(job)
        client = cluster.client
        follower = LogFollower(lambda after: client.logs(job, loop, node, level, after))
        try:
            while True:
                ended = JobStatus(cluster.job(job).status).terminal
                try:
                    lines = follower.read()
                except NotInJobError as exc:
                    fail(str(exc), EXIT_INVALID)
                except ValueError as exc:
                    fail(str(exc), EXIT_INVALID)
                for line in lines:
                    _print_line(line, json_)
                if not follow or ended:
                    return
                time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None


def _print_line(line: LogLine, json_: bool) -> None:
    if json_:
        sys.stdout.write(json.dumps(line.to_json()) + "\n")
        sys.stdout.flush()
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(line.at)) + f".{int(line.at % 1 * 1000):03d}"
    where = f"{line.loop}[{line.iteration}] {line.node}"
    if line.attempt > 1:
        where += f" (attempt {line.attempt})"
    style = _LEVEL_STYLE.get(line.level, "")
    level = f"[{style}]{line.level:<8}[/{style}]" if style else f"{line.level:<8}"
    head = f"[dim]{stamp}[/dim] {level} {escape(where)} [dim]{escape(line.logger)}[/dim]"
    out.print(f"{head} {escape(line.message)}", soft_wrap=True)
