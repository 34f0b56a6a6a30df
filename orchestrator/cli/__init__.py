"""The ``segue`` command line."""

from __future__ import annotations

import importlib.metadata
import os

import typer

from nodes.errors import SegueError
from orchestrator.cli import (
    coordinator,
    db,
    events,
    jobs,
    logs,
    loops,
    nodes,
    plan,
    queues,
    run,
    submit,
    ui,
    validate,
)
from orchestrator.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, err

app = typer.Typer(
    name="segue",
    help="Segue: typed dataflow workflows, embedded or on Celery workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run.run)
app.command("coordinator")(coordinator.coordinator)
app.command("validate")(validate.validate)
app.command("plan")(plan.plan)
app.add_typer(nodes.app, name="nodes")
app.command("submit")(submit.submit)
app.add_typer(jobs.app, name="jobs")
app.add_typer(loops.app, name="loops")
app.command("queues")(queues.queues)
app.command("events")(events.events)
app.command("logs")(logs.logs)
app.add_typer(db.app, name="db")
app.command("ui")(ui.ui)


def _load_plugins() -> None:
    # Commands from packages built on the orchestrator (``segue worker`` comes
    # from ``workers``) join through an entry point: the orchestrator never
    # imports them itself.
    for entry in importlib.metadata.entry_points(group="segue.cli"):
        entry.load()(app)


_load_plugins()


def main() -> None:
    """Entry point of the ``segue`` console script."""
    try:
        app()
    except SegueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if os.environ.get("SEGUE_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc}\n"
            "This is a bug in Segue. Run again with SEGUE_DEBUG=1 for the traceback and report it."
        )
        raise SystemExit(EXIT_FAILED) from None


__all__ = ["app", "main"]
