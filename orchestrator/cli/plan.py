"""``segue plan``: how a workflow splits into the main stage and loops."""

from __future__ import annotations

import typer

from orchestrator.cli.common import FileArg, JsonOpt
from orchestrator.cli.output import EXIT_INVALID, out, print_issues, print_json
from orchestrator.cli.validate import compile_file
from orchestrator.model.spec import LoopPolicy
from orchestrator.planner import MAIN


def plan(file: FileArg, json_: JsonOpt = False) -> None:
    """Show how a workflow splits into the main stage and loops, and where nodes run."""
    compiled, issues = compile_file(file)
    if compiled is None:
        if json_:
            print_json({"valid": False, "errors": [i.to_json() for i in issues]})
        else:
            print_issues(issues)
        raise typer.Exit(EXIT_INVALID)
    if json_:
        print_json(compiled.to_json())
        return
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]{compiled.workflow}[/bold]")
    for loop in compiled.all_loops():
        if loop.name == MAIN and not loop.nodes:
            continue
        title = (
            "main stage"
            if loop.producer is None
            else (f"loop [bold]{loop.name}[/bold] ({_policy_text(loop.policy)})")
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
    for node_id, text in compiled.comments.items():
        tree.add(f"[dim]note {node_id}:[/dim] {escape(text)}")
    for node_id, text in compiled.notes.items():
        tree.add(f"[yellow]planned {node_id}:[/yellow] {escape(text)}")
    out.print(tree)


def _policy_text(policy: LoopPolicy) -> str:
    parts = [f"pool {policy.pool}", f"on_error {policy.on_error}"]
    if policy.until is not None:
        parts.append(f"until {policy.until}")
    if policy.max_iterations is not None:
        parts.append(f"max_iterations {policy.max_iterations}")
    return ", ".join(parts)
