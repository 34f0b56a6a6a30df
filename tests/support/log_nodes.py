"""A node type that logs and prints, in an importable module: a cluster's workers
load it through a ``segue.nodes`` entry point the test publishes
(:func:`publish`), as a user's package would."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from nodes import Node, Ports, RunContext

DIST = "segue_test_log_nodes-0.1.dist-info"


class Talker(Node):
    """Says its value four ways: its context logger, a library logger, stdout, stderr."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.logger.info("context says %s", inputs.value)
        logging.getLogger("user.library").warning("library warns %s", inputs.value)
        print(f"printed {inputs.value}")
        print(f"to stderr {inputs.value}", file=sys.stderr)
        return self.Outputs(value=inputs.value)


def publish(folder: Path) -> Path:
    """Write an installed distribution's metadata into ``folder`` whose entry point
    names :class:`Talker`; put ``folder`` on the path to install it."""
    dist = folder / DIST
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: segue-test-log-nodes\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[segue.nodes]\nTalker = tests.support.log_nodes:Talker\n"
    )
    return folder
