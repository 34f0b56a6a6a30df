"""``segue nodes``: the node types this installation can run, and node health in a job."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from nodes.errors import UnknownNodeTypeError
from nodes.introspect import describe
from nodes.library import default_registry
from orchestrator.cli.common import BrokerOpt, DatabaseOpt, JobArg, JsonOpt, connect
from orchestrator.cli.output import EXIT_INVALID, fail, out, print_json

app = typer.Typer(help="Inspect node types, and node health in a job.", no_args_is_help=True)


@app.command("health")
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
    for node, info in report_.items():
        if info.get("waits"):
            out.print(f"[yellow]{node}[/yellow] {info['waits']}")


@app.command("types")
def types(
    name: Annotated[str | None, typer.Argument(help="Show one type in full")] = None,
    json_: JsonOpt = False,
) -> None:
    """List registered node types with their ports, config, kind and resources."""
    registry = default_registry()
    if name is not None:
        try:
            selected = [registry.get(name)]
        except UnknownNodeTypeError as exc:
            fail(str(exc), EXIT_INVALID)
    else:
        selected = list(registry)
    described = [describe(node_type) for node_type in selected]
    if json_:
        print_json(described if name is None else described[0])
        return
    table = Table(title="Node types", show_lines=name is not None)
    table.add_column("type", no_wrap=True)
    table.add_column("kind", min_width=len("producer"))  # a narrow terminal squeezes summary
    for column in ("inputs", "outputs", "config", "gpu", "summary"):
        table.add_column(column)
    for info in described:
        table.add_row(
            f"[bold]{info['name']}[/bold] v{info['version']}",
            info["kind"] + ("" if info["blocking"] else ", non-blocking"),
            _ports(info["inputs"], inputs=True),
            _ports(info["outputs"], inputs=False),
            _config(info["config_schema"]),
            str(info["resources"]["gpu"] or ""),
            f"[dim]{info['summary']}[/dim]",
        )
    out.print(table)


def _ports(ports: list[dict[str, object]], inputs: bool) -> str:
    rows = []
    for port in ports:
        optional = inputs and not port.get("required", True)
        rows.append(f"{port['name']}{'?' if optional else ''}: {port['type']}")
    return "\n".join(rows) or "-"


def _config(schema: dict[str, object]) -> str:
    properties = schema.get("properties")
    required = set(schema.get("required", []) or [])  # type: ignore[call-overload]
    if not isinstance(properties, dict):
        return "-"
    return "\n".join(f"{key}{'' if key in required else '?'}" for key in properties) or "-"
