"""What the command modules share: their options, the connection to a cluster,
and jobs and loops as JSON and as tables.

The connection (:func:`connect`) takes settings from ``SEGUE_*`` variables or
``--broker-url``/``--database-url`` and opens a cluster client and the store it
reads; unknown jobs and unreachable services end the command with a message and
a non-zero exit, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.table import Table

from orchestrator.broker import broker_errors, redact
from orchestrator.cli.output import EXIT_FAILED, EXIT_INVALID, fail
from orchestrator.client import Client
from orchestrator.errors import LoopEndedError, UnknownJobError, UnknownLoopError
from orchestrator.settings import Settings
from orchestrator.store import JobRecord, LoopRecord, Store, StoreError

# options ----------------------------------------------------------------------------
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
FileArg = Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON)", show_default=False)]
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
    except LoopEndedError as exc:
        fail(str(exc), EXIT_FAILED)
    except broker_errors() as exc:
        fail(
            f"cannot reach the broker at {redact(settings.broker_url)} "
            f"({type(exc).__name__}: {exc}); check SEGUE_BROKER_URL or --broker-url "
            "(and its user, password and TLS settings)",
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


_JOB_FIELDS = ("workflow", "status", "created_at", "started_at", "finished_at", "error")
_LOOP_FIELDS = ("name", "status", "iterations", "failed_iterations")


def job_json(record: JobRecord) -> dict[str, Any]:
    """The fields of ``segue jobs list --json``; the id is ``job``, as in every command.

    ``driver`` names the live engine or coordinator driving the job (``None``:
    none); ``orphaned`` says its driver is gone and nothing drives it yet.
    """
    from orchestrator.driver import driven, orphaned

    now = time.time()
    return {
        "job": record.id,
        **{key: getattr(record, key) for key in _JOB_FIELDS},
        "driver": record.owner if driven(record, now) else None,
        "orphaned": orphaned(record, now),
    }


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
