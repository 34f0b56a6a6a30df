"""``segue run``: run a workflow embedded - no server, SQLite, local pools."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from orchestrator.cli.common import FileArg, settings_from
from orchestrator.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    err,
    fail,
    out,
    plural,
    print_issues,
    print_json,
)
from orchestrator.cli.progress import follow
from orchestrator.client import Client, JobResult
from orchestrator.errors import Issue, WorkflowError
from orchestrator.model.limits import MAX_NESTING_DEPTH, int_literal
from orchestrator.model.workflow import Workflow
from orchestrator.planner import MAIN
from orchestrator.settings import Settings

InputOpt = Annotated[
    list[str] | None,
    typer.Option("--input", "-i", help="name=value (JSON when it parses, else a string)"),
]


def parse_inputs(values: list[str]) -> dict[str, Any]:
    """``["n=3", "s=hello"]`` → ``{"n": 3, "s": "hello"}``.

    Raises:
        ValueError: naming the malformed item.
    """
    inputs: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"input {item!r} is not of the form name=value")
        try:
            # Over-long integers stay unconverted, for the submission to refuse by name.
            inputs[name.strip()] = json.loads(raw, parse_int=int_literal)
        except json.JSONDecodeError:
            inputs[name.strip()] = raw
        except RecursionError:
            raise ValueError(
                f"input {name.strip()!r} nests lists and mappings deeper than the limit "
                f"of {MAX_NESTING_DEPTH} levels"
            ) from None
    return inputs


def run(
    file: FileArg,
    inputs: InputOpt = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object for scripts")
    ] = False,
    ui: Annotated[
        bool, typer.Option("--ui", help="Serve the operations page for the job while it runs")
    ] = False,
    ui_port: Annotated[
        int, typer.Option("--ui-port", min=0, max=65535, help="Port of the page (0: any free)")
    ] = 8484,
) -> None:
    """Run a workflow in this process: exit 0 completed, 1 failed, 2 invalid, 130 interrupted."""
    try:
        values = parse_inputs(inputs or [])
        workflow = Workflow.load(file)
    except ValueError as exc:
        if json_:  # scripts get their one object, whatever went wrong
            print_invalid_result([Issue(str(exc))])
            raise typer.Exit(EXIT_INVALID) from None
        fail(str(exc), EXIT_INVALID)
    except WorkflowError as exc:
        _invalid(exc, file, json_)
    interrupted = False
    settings = settings_from(None, None)
    with Client.embedded(settings=settings) as client, ExitStack() as page:
        try:
            job = client.submit(workflow, values)
        except WorkflowError as exc:
            _invalid(exc, file, json_)
        if ui:
            page.callback(serve_page(client, settings, job.id, ui_port))
        try:
            if json_ or not sys.stderr.isatty():
                result = job.wait()
            else:
                follow(job.events(), workflow.name)
                result = job.wait()
        except KeyboardInterrupt:
            client.cancel(job.id)
            result = job.wait(timeout=60)
            interrupted = True
    print_result(result, json_)
    if interrupted:
        _exit_abandoning_runs(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if result.status == "completed" else EXIT_FAILED)


def serve_page(client: Client, settings: Settings, job: str, port: int) -> Callable[[], None]:
    """Serve the operations page of ``job`` on loopback and print its address on
    stderr; returns what stops it. Exit 1 when the port cannot be bound."""
    from orchestrator.ui import UiServer, create_app, embedded_sources, new_token

    token = settings.ui_token or new_token()
    sources, release = embedded_sources(client, settings)
    try:
        server = UiServer(create_app(sources, token, guard_reads=False), "127.0.0.1", port)
    except OSError as exc:
        release()
        client.cancel(job)
        fail(f"cannot serve the page on 127.0.0.1:{port} ({exc}); choose another --ui-port")
    err.print(f"operations page: {server.url}/jobs/{job}?token={token}", markup=False)

    def close() -> None:
        server.close()
        release()

    return close


def _exit_abandoning_runs(code: int) -> NoReturn:
    """Exit now: the job is cancelled and recorded, the store closed.

    A node that was running when Ctrl-C came still holds a pool thread, and a
    normal exit would join that thread - wait for the node to finish - first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _invalid(exc: WorkflowError, file: Path, json_: bool) -> None:
    issues: list[Issue] = getattr(exc, "issues", None) or [Issue(str(exc), source=str(file))]
    if json_:
        print_invalid_result(issues)
    else:
        print_issues(issues)
    raise typer.Exit(EXIT_INVALID)


def print_invalid_result(issues: list[Issue]) -> None:
    """Print `segue run --json`'s object for a workflow or input that was refused."""
    print_json(
        {
            "job": None,
            "status": "invalid",
            "outputs": {},
            "error": "; ".join(i.located() for i in issues),
            "loops": {},
        }
    )


def print_result(result: JobResult, json_: bool) -> None:
    """Print how a job ended: its JSON object with ``json_``, else a short summary."""
    if json_:
        print_json(result.to_json())
        return
    style = {"completed": "green", "failed": "red"}.get(result.status, "yellow")
    out.print(f"job [bold]{result.job}[/bold]: [{style}]{result.status}[/{style}]")
    for name, value in result.outputs.items():
        text = json.dumps(value)
        out.print(f"  {name} = {text if len(text) < 500 else text[:500] + '…'}")
    for name, loop in result.loops.items():
        if name != MAIN:
            failed = f", {loop.failed_iterations} failed" if loop.failed_iterations else ""
            iterations = plural(loop.iterations, "iteration")
            out.print(f"  loop {name}: {loop.status}, {iterations}{failed}")
    if result.error:
        out.print(f"  [red]error:[/red] {result.error}")
