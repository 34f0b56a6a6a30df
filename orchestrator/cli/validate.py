"""``segue validate``: check a workflow file before it runs."""

from __future__ import annotations

from pathlib import Path

import typer

from nodes.library import default_registry
from orchestrator.cli.common import FileArg, JsonOpt
from orchestrator.cli.output import EXIT_INVALID, out, plural, print_issues, print_json
from orchestrator.errors import Issue, WorkflowError
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow


def compile_file(path: Path) -> tuple[Plan | None, list[Issue]]:
    """Load and plan the workflow at ``path``: the plan, or ``None`` and its located issues."""
    try:
        workflow = Workflow.load(path)
        return compile_workflow(workflow, default_registry()), []
    except WorkflowError as exc:
        issues: list[Issue] = getattr(exc, "issues", None) or [Issue(str(exc), source=str(path))]
        return None, issues


def validate(file: FileArg, json_: JsonOpt = False) -> None:
    """Validate a workflow file: every fault, located; exit 0 when valid, 2 when not."""
    plan, issues = compile_file(file)
    if json_:
        print_json({"valid": not issues, "errors": [i.to_json() for i in issues]})
    elif plan is not None:
        out.print(
            f"[green]✓[/green] {file}: workflow [bold]{plan.workflow}[/bold] is valid "
            f"({plural(len(plan.nodes), 'node')}, {plural(len(plan.loops), 'loop')})"
        )
    else:
        print_issues(issues)
        out.print(f"{plural(len(issues), 'problem')} in {file}")
    if issues:
        raise typer.Exit(EXIT_INVALID)
