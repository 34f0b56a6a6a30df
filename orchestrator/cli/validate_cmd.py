"""``segue validate`` and ``segue plan``: check a workflow file before it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nodes.library import default_registry
from orchestrator.cli.output import EXIT_INVALID, out, print_issues, print_json
from orchestrator.errors import Issue, WorkflowError
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow

FileArg = Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON)", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def _compile(path: Path) -> tuple[Plan | None, list[Issue]]:
    try:
        workflow = Workflow.load(path)
        return compile_workflow(workflow, default_registry()), []
    except WorkflowError as exc:
        issues: list[Issue] = getattr(exc, "issues", None) or [Issue(str(exc), source=str(path))]
        return None, issues


def validate(file: FileArg, json_: JsonOpt = False) -> None:
    """Validate a workflow file: every fault, located; exit 0 when valid, 2 when not."""
    plan, issues = _compile(file)
    if json_:
        print_json({"valid": not issues, "errors": [i.to_json() for i in issues]})
    elif plan is not None:
        loops = len(plan.loops)
        out.print(
            f"[green]✓[/green] {file}: workflow [bold]{plan.workflow}[/bold] is valid "
            f"({len(plan.nodes)} nodes, {loops} loop{'s' if loops != 1 else ''})"
        )
    else:
        print_issues(issues)
        out.print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in {file}")
    if issues:
        raise typer.Exit(EXIT_INVALID)


def plan(file: FileArg, json_: JsonOpt = False) -> None:
    """Show how a workflow splits into the main stage and loops, and where nodes run."""
    compiled, issues = _compile(file)
    if compiled is None:
        if json_:
            print_json({"valid": False, "errors": [i.to_json() for i in issues]})
        else:
            print_issues(issues)
        raise typer.Exit(EXIT_INVALID)
    if json_:
        print_json(compiled.to_json())
        return
    from rich.tree import Tree

    tree = Tree(f"[bold]{compiled.workflow}[/bold]")
    for loop in compiled.all_loops():
        if loop.name == "main" and not loop.nodes:
            continue
        policy = loop.policy
        title = (
            "main stage"
            if loop.producer is None
            else (f"loop [bold]{loop.name}[/bold] (pool {policy.pool}, on_error {policy.on_error})")
        )
        branch = tree.add(title)
        for node_id in loop.nodes:
            node = compiled.nodes[node_id]
            flags = [node.type_name, f"queue {node.route.queue}"]
            if node.detached:
                flags.append("detached")
            if node.cache:
                flags.append("cached")
            branch.add(f"{node_id} [dim]({', '.join(flags)})[/dim]")
    for queue in compiled.queues.values():
        writers = ", ".join(f"{w.loop}/{w.node}" for w in queue.writers) or "none"
        readers = ", ".join(f"{r.loop}/{r.node}" for r in queue.readers) or "none"
        tree.add(f"queue [bold]{queue.name}[/bold] ({queue.scope}): {writers} → {readers}")
    out.print(tree)
