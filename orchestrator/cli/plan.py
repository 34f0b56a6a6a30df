"""``segue plan``: how a workflow splits into the main stage and loops."""

from __future__ import annotations

import typer

from orchestrator.cli.common import FileArg, JsonOpt
from orchestrator.cli.output import EXIT_INVALID, out, print_issues, print_json
from orchestrator.cli.validate import compile_file
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
    from rich.tree import Tree

    tree = Tree(f"[bold]{compiled.workflow}[/bold]")
    for loop in compiled.all_loops():
        if loop.name == MAIN and not loop.nodes:
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
