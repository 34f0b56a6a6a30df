"""Node types that end their process or thread badly, for tests/engine/test_robust_runs.

They live in an importable module so that a process-pool child can build them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Any, Literal

from nodes import Node, NodeConfig, NodeRegistry, Ports, RunContext
from nodes.library import builtin_registry
from orchestrator import Workflow, WorkflowBuilder


class Misbehave(Node):
    """Passes its value on, unless ``value == config.bad``: then it misbehaves as
    ``config.how`` says. With ``once`` (a file path), only while that file does
    not exist yet (it is created first), so a retry succeeds."""

    class Config(NodeConfig):
        how: Literal["exit", "base", "keyboard", "segv", "null", "kill"]
        bad: Any = 0
        once: str | None = None

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        value: Any

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        if inputs.value == self.config.bad and self._first():
            self._misbehave()
        return self.Outputs(value=inputs.value)

    def _first(self) -> bool:
        if self.config.once is None:
            return True
        marker = Path(self.config.once)
        if marker.exists():
            return False
        marker.touch()
        return True

    def _misbehave(self) -> None:
        how = self.config.how
        if how == "exit":
            sys.exit(3)
        if how == "base":
            raise BaseException("gone")
        if how == "keyboard":
            raise KeyboardInterrupt
        if how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if how == "null":
            ctypes.string_at(0)
        if how == "kill":  # what the out-of-memory killer does
            os.kill(os.getpid(), signal.SIGKILL)


class Chatty(Node):
    """Reports progress, logs, sends a preview, writes an artifact, returns its uri."""

    class Inputs(Ports):
        value: Any = None

    class Outputs(Ports):
        uri: str

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        ctx.progress(0.5, f"half of {inputs.value}")
        ctx.logger.warning("chatty says %s", inputs.value)
        ctx.emit("preview", {"label": "chatty", "value": inputs.value})
        artifact = ctx.artifacts.put(f"value {inputs.value}".encode(), "text/plain")
        return self.Outputs(uri=artifact.uri)


def registry() -> NodeRegistry:
    """The built-ins, :class:`Misbehave` and :class:`Chatty`."""
    types = builtin_registry()
    types.register(Misbehave)
    types.register(Chatty)
    return types


def register(types: NodeRegistry) -> None:
    """Add :class:`Misbehave` and :class:`Chatty` to ``types`` (the ``segue.nodes``
    entry point the cluster tests publish them under)."""
    types.register(Misbehave)
    types.register(Chatty)


def misbehaving(pool: str, how: str, count: int = 6, bad: int = 2, **options: Any) -> Workflow:
    """``ticks`` (Range 0..count, on ``pool``, on_error continue) -> ``odd``
    (Misbehave) -> ``out``."""
    b = WorkflowBuilder(f"misbehave-{pool}-{how}")
    ticks = b.node("ticks", "Range", config={"stop": count})
    config = {"how": how, "bad": bad} | options.pop("config", {})
    odd = b.node("odd", "Misbehave", config=config, **options)
    out = b.node("out", "Output", config={"name": "values"})
    b.edge(ticks["value"], odd["value"]).edge(odd["value"], out["value"])
    b.loop("ticks", pool=pool, on_error="continue")
    return b.build()
