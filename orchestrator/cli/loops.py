"""``segue loops``: list a job's loops; pause, resume or stop one.

Steering writes the loop's desired state to the store and wakes the
coordinator; the change takes effect once the in-flight iteration ends.
Asking for the state a loop is already in (or headed to) is not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer

from orchestrator.cli.common import (
    BrokerOpt,
    Cluster,
    DatabaseOpt,
    JobArg,
    JsonOpt,
    connect,
    loop_json,
    loops_table,
    styled,
    unknown_job,
)
from orchestrator.cli.output import out, print_json
from orchestrator.client import Client
from orchestrator.driver import driven
from orchestrator.errors import UnknownLoopError
from orchestrator.planner import MAIN
from orchestrator.states import DesiredLoopState, LoopStatus
from orchestrator.store import LoopRecord

LoopArg = Annotated[str, typer.Argument(help="Loop name (see `segue loops list JOB`)")]

app = typer.Typer(help="List, pause, resume and stop a job's loops.", no_args_is_help=True)


@app.command("list")
def list_loops(
    job: JobArg,
    json_: JsonOpt = False,
    broker_url: BrokerOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """List a job's loops (the main stage is `main`) with status and iteration counts."""
    with connect(broker_url, database_url) as cluster:
        records = _loops(cluster, job)
    if json_:
        print_json([loop_json(r) for r in records])
        return
    loops = [loop_json(r, desired=True) for r in records]
    out.print(loops_table(loops, f"Loops of job {job}"))


@app.command("pause")
def pause(
    job: JobArg, loop: LoopArg, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Pause a loop: its in-flight iteration finishes, no new one starts."""
    _steer(job, loop, DesiredLoopState.PAUSED, broker_url, database_url)


@app.command("resume")
def resume(
    job: JobArg, loop: LoopArg, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Resume a paused loop with its next item."""
    _steer(job, loop, DesiredLoopState.RUNNING, broker_url, database_url)


@app.command("stop")
def stop(
    job: JobArg, loop: LoopArg, broker_url: BrokerOpt = None, database_url: DatabaseOpt = None
) -> None:
    """Stop a loop: its in-flight iteration finishes, then it ends `stopped`."""
    _steer(job, loop, DesiredLoopState.STOPPED, broker_url, database_url)


def _steer(
    job: str,
    name: str,
    desired: DesiredLoopState,
    broker_url: str | None,
    database_url: str | None,
) -> None:
    state = desired.value
    with connect(broker_url, database_url) as cluster:
        # The client refuses what every client refuses (unknown job or loop, the
        # main stage, resuming an ended loop); asking again is not an error.
        loop = _loop(cluster, job, name)
        _REQUEST[desired](cluster.client, job, name)
        record = cluster.store.get_job(job)
    if LoopStatus(loop.status).terminal:
        out.print(f"loop {name} of job {job} already ended ({styled(loop.status)})")
        return
    if loop.status == state or (loop.status == "pending" and state == "running"):
        out.print(f"loop {name} of job {job} is already {state}")
    elif loop.desired == state and desired is not DesiredLoopState.RUNNING:
        out.print(f"loop {name} of job {job} is already {_ING[desired]}: {_ONCE}")
    elif desired is DesiredLoopState.RUNNING:
        out.print(f"loop {name} of job {job} resumed")
    else:
        out.print(f"loop {name} of job {job} is {_ING[desired]}: {_ONCE}")
    if record is not None and not driven(record, time.time()):
        who = "no coordinator has taken it yet" if record.owner is None else "its driver is gone"
        out.print(
            f"[yellow]job {job} is not being driven now ({who}):[/yellow] the request is "
            "recorded and takes effect when an engine or coordinator on this store takes it"
        )


_ONCE = "it takes effect once the in-flight iteration ends"
_ING = {DesiredLoopState.PAUSED: "pausing", DesiredLoopState.STOPPED: "stopping"}
_REQUEST: dict[DesiredLoopState, Callable[[Client, str, str], None]] = {
    DesiredLoopState.PAUSED: Client.pause_loop,
    DesiredLoopState.RUNNING: Client.resume_loop,
    DesiredLoopState.STOPPED: Client.stop_loop,
}


def _loops(cluster: Cluster, job: str) -> list[LoopRecord]:
    records = cluster.store.list_loops(job)
    if not records and cluster.store.get_job(job) is None:
        unknown_job(job)
    return records


def _loop(cluster: Cluster, job: str, name: str) -> LoopRecord:
    records = {r.name: r for r in _loops(cluster, job)}
    if name not in records or name == MAIN:
        steerable = [n for n in records if n != MAIN]
        raise UnknownLoopError(job, name, steerable)
    return records[name]
