"""``segue submit``: send a workflow to a cluster, and optionally wait for its result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from orchestrator.cli.common import BrokerOpt, DatabaseOpt, FileArg, JsonOpt, connect
from orchestrator.cli.jobs import await_result, report
from orchestrator.cli.output import EXIT_INVALID, err, out, plural, print_issues, print_json
from orchestrator.cli.run import InputOpt, parse_inputs, print_invalid_result
from orchestrator.cli.validate import compile_file
from orchestrator.errors import Issue, WorkflowError


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
    plan, issues = compile_file(file)
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
        print_invalid_result(issues)
    elif json_:
        print_json({"valid": False, "errors": [i.to_json() for i in issues]})
    else:
        print_issues(issues)
        out.print(f"{plural(len(issues), 'problem')} in {file}")
    raise typer.Exit(EXIT_INVALID)
