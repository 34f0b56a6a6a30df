"""A process that runs one embedded job over a home folder, for tests that stop it.

``python -m tests.support.embedded_job HOME TALLY N`` submits a loop of ``N``
iterations (Range -> Tally -> Output) to ``Client.embedded(HOME)``, prints
``{"job": id}`` and waits for the job. ``Tally`` appends its run id to the
file ``TALLY`` on every execution, so a test counts executions, not records.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from nodes import Node, NodeConfig, NodeRegistry, Ports, RunContext
from nodes.library import builtin_registry
from orchestrator import Client, Workflow


class Tally(Node):
    """Append the run id to a file at every execution, wait, pass the value on."""

    class Config(NodeConfig):
        path: str
        seconds: float = 0.0

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        with open(self.config.path, "a") as tally:
            tally.write(ctx.run_id + "\n")
        time.sleep(self.config.seconds)
        return self.Outputs(value=inputs.value)


def registry() -> NodeRegistry:
    """The built-ins and :class:`Tally`."""
    types = builtin_registry()
    types.register(Tally)
    return types


def workflow(tally: Path, n: int, seconds: float = 0.05) -> Workflow:
    """``ticks`` (Range 0..n) -> ``tally`` -> ``out`` (the list of values)."""
    return Workflow.from_dict(
        {
            "name": "tallied",
            "nodes": [
                {"id": "ticks", "type": "Range", "config": {"stop": n}},
                {
                    "id": "tally",
                    "type": "Tally",
                    "config": {"path": str(tally), "seconds": seconds},
                },
                {"id": "out", "type": "Output", "config": {"name": "values"}},
            ],
            "edges": [
                {"from": "ticks.value", "to": "tally.value"},
                {"from": "tally.value", "to": "out.value"},
            ],
        }
    )


def executions(tally: Path) -> dict[str, int]:
    """How many times each run id executed."""
    counts: dict[str, int] = {}
    if tally.exists():
        for line in tally.read_text().splitlines():
            counts[line] = counts.get(line, 0) + 1
    return counts


def main(home: str, tally: str, n: str) -> None:
    with Client.embedded(home, registry=registry()) as client:
        job = client.submit(workflow(Path(tally), int(n)))
        print(json.dumps({"job": job.id}), flush=True)
        job.wait()


if __name__ == "__main__":
    main(*sys.argv[1:4])
