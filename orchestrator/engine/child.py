"""The process pool's children: what runs in a spawned child of
:class:`~orchestrator.engine.processes.ProcessPool`.

A child is set up once (:func:`init_child`): it ignores Ctrl-C (the parent owns
it), sends its log records to the parent, builds its node registry from the
built-ins, entry points and the parent's importable types (by ``module:name``),
opens the parent's artifact store and says it is ready. Then each run comes as
a JSON request (:func:`run_in_child`), never as a pickled node; the child says
which run it starts, and node events go to the parent over the same queue.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import logging.handlers
import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nodes.base import Node
from nodes.library import default_registry
from orchestrator.artifacts import open_artifacts
from orchestrator.errors import MAIN_GUARD_HELP, MainGuardMissing
from orchestrator.messages import RunRequest
from orchestrator.runner import NodeRunner
from orchestrator.streams.managed import ManagedStreamHub


def refuse_in_starting_child() -> None:
    """Raise when called while a spawned child imports the main script.

    A script without an ``if __name__ == "__main__":`` guard starts Segue again
    in every process-pool child; stopping it here keeps that child from opening
    the store, taking jobs over or spawning children of its own.

    Raises:
        MainGuardMissing: in such a child.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise MainGuardMissing(MAIN_GUARD_HELP)


@dataclass
class _Child:
    runner: NodeRunner
    events: Any


_child: _Child | None = None


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the duration (POSIX; elsewhere a no-op)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _LogsToParent(logging.handlers.QueueHandler):
    """Sends a child's log records (formatted, so they pickle) to the parent."""

    def __init__(self, events: Any) -> None:
        super().__init__(events)
        self._events = events  # a SimpleQueue: put, no put_nowait

    def enqueue(self, record: logging.LogRecord) -> None:
        self._events.put(("log", record))


def init_child(
    artifacts: str | None, types: list[str], events: Any, generation: int, level: int
) -> None:
    global _child
    # Ctrl-C at a terminal reaches the whole process group. The parent owns it:
    # it cancels the job and ends the pool, so a child must not die of it with
    # a traceback. The child started with SIGINT blocked (sigint_blocked):
    # ignoring it drops one that arrived since, then it can be unblocked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    root = logging.getLogger()
    root.handlers = [_LogsToParent(events)]
    root.setLevel(level)
    registry = default_registry().copy()
    for path in types:
        node_type = _import(path)
        if node_type is not None:  # else its runs fail as an unknown type, by name
            registry.register(node_type)

    def send(run_id: str, kind: str, data: Any) -> None:
        events.put(("event", run_id, kind, data))

    store = open_artifacts(artifacts or ".segue/artifacts")
    runner = NodeRunner(
        registry, store, on_event=send, worker=f"process-{os.getpid()}", host_stops=False
    )
    _child = _Child(runner, events)
    events.put(("ready", generation))


def _import(path: str) -> type[Node] | None:
    module, _, name = path.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    except Exception:
        return None
    return target if isinstance(target, type) and issubclass(target, Node) else None


def run_in_child(request: dict[str, Any], hub: Any = None) -> dict[str, Any]:
    assert _child is not None
    if hub is not None and _child.runner.streams is None:
        _child.runner.streams = ManagedStreamHub.connect(hub)
    _child.events.put(("start", request["run_id"], os.getpid()))
    return _child.runner.run(RunRequest.model_validate(request)).to_json()
