"""Recorded journals: a workflow, its inputs, its journal and the decisions it led to.

A test replays each journal (``plan + journal → state``) and compares every
decision with the recorded ones, so a change that alters what the scheduler
decides fails loudly. After an intended change of decisions, record them
again with ``python -m tests.driver.journals`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nodes.library import builtin_registry
from orchestrator import Client, Workflow
from orchestrator.driver import INPUT_KIND, replay
from orchestrator.planner import compile_workflow
from orchestrator.scheduler import (
    Ack,
    Command,
    Dispatch,
    JobChanged,
    LoopChanged,
    Revoke,
    RunChanged,
)
from orchestrator.store import open_store
from orchestrator.store.base import EventRecord

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[2] / "examples"
RECORDED = {  # fixture name -> (example, inputs)
    "running-sum": ("running-sum", {}),
    "retries": ("retries", {}),
    "two-loops-queue": ("two-loops-queue", {}),
    "group-map": ("group-map", {}),
    "quickstart": ("quickstart", {"n": 4}),
    "converge": ("converge", {}),
}


def describe(command: Command) -> dict[str, Any]:
    """A command as plain JSON, everything that makes it a decision."""
    match command:
        case Dispatch():
            return {
                "dispatch": command.run_id,
                "attempt": command.attempt,
                "kind": command.kind,
                "inputs": command.inputs,
                "cursor": command.cursor,
                "writers_done": command.writers_done,
                "deadline": command.deadline,
                "resent": command.resent,
            }
        case RunChanged():
            return {
                "run": command.run_id,
                "status": command.status,
                "attempt": command.attempt,
                "outputs": command.outputs,
                "error": command.error,
            }
        case LoopChanged():
            return {
                "loop": command.loop,
                "status": command.status,
                "desired": command.desired,
                "iterations": command.iterations,
                "failed_iterations": command.failed_iterations,
                "cursor": command.cursor,
            }
        case JobChanged():
            return {"job": command.status, "outputs": command.outputs, "error": command.error}
        case Ack():
            return {"ack": command.delivery, "loop": command.loop, "node": command.node}
        case Revoke():
            return {"revoke": command.run_id, "attempt": command.attempt}
    raise TypeError(f"not a command: {command!r}")


def decisions(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    """Replay a fixture's journal; every decision, described."""
    workflow = Workflow.from_dict(fixture["workflow"])
    plan = compile_workflow(workflow, builtin_registry())
    journal = [
        EventRecord(job_id=fixture["job"], kind=INPUT_KIND, at=e["at"], data=e["data"], seq=i + 1)
        for i, e in enumerate(fixture["journal"])
    ]
    replayed = replay(fixture["job"], plan, fixture["inputs"], journal, keep_decisions=True)
    return [describe(c) for c in replayed.decisions]


def record(name: str, home: Path) -> dict[str, Any]:
    """Run an example embedded and keep its journal and the decisions it replays to."""
    example, inputs = RECORDED[name]
    workflow = Workflow.load(EXAMPLES / f"{example}.yaml")
    with Client.embedded(home) as client:
        job = client.submit(workflow, inputs)
        result = job.wait(timeout=60)
    store = open_store(None, home)
    try:
        journal = [
            {"at": e.at, "data": e.data}
            for e in store.read_events(job.id, limit=100_000)
            if e.kind == INPUT_KIND
        ]
    finally:
        store.close()
    fixture = {
        "name": name,
        "job": job.id,
        "workflow": workflow.to_dict(),
        "inputs": inputs,
        "journal": journal,
        "outputs": result.outputs,
    }
    fixture["decisions"] = decisions(fixture)
    return fixture


def main(names: list[str]) -> None:
    import tempfile

    for name in names or sorted(RECORDED):
        with tempfile.TemporaryDirectory() as home:
            fixture = record(name, Path(home))
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
        print(f"{path}: {len(fixture['journal'])} inputs, {len(fixture['decisions'])} decisions")
