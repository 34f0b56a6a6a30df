"""``segue nodes``: the node types this installation can run."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from nodes.errors import UnknownNodeTypeError
from nodes.introspect import describe
from nodes.library import default_registry
from orchestrator.cli.admin_misc import health
from orchestrator.cli.output import EXIT_INVALID, fail, out, print_json

app = typer.Typer(help="Inspect node types, and node health in a job.", no_args_is_help=True)
app.command("health")(health)


@app.command("types")
def types(
    name: Annotated[str | None, typer.Argument(help="Show one type in full")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
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
    for column in ("kind", "inputs", "outputs", "config", "gpu", "summary"):
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
