"""The embedded engine's process pool, and what happens when a child dies.

Children are spawned (CUDA is never touched in a forked parent). A child gets a
run's JSON request - never a pickled node - and builds the node from its own
registry (the child's side is :mod:`orchestrator.engine.child`). It sends node
events (progress, previews, logs) and the run ids it starts over a queue the
parent drains here.

When a child dies (a segfault, an OOM kill), ``concurrent.futures`` breaks the
whole pool. The run that child was running fails with a retryable
:class:`~orchestrator.errors.ChildProcessDied`; the other runs the pool held are
submitted again to a new pool. A pool whose children die before any of them
is ready failed to start: most often a script without an ``if __name__ ==
"__main__":`` guard, and its runs fail with an error that says to add it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.engine.child import init_child, run_in_child, sigint_blocked
from orchestrator.errors import MAIN_GUARD_HELP, ChildProcessDied, MainGuardMissing
from orchestrator.results import RunError, RunResult
from orchestrator.runner.spec import NodeEvent
from orchestrator.scheduler.commands import Dispatch
from orchestrator.streams.managed import ManagedStreamHub

MAX_BREAKS = 3
"""A run in flight in this many broken pools fails, even if no child is known to
have died running it (so a run that kills its child unseen cannot loop forever)."""
DRAIN_POLL_S = 0.1
CHILD_EXIT_WAIT_S = 5.0

ResultsSink = Callable[[list[RunResult]], None]


@dataclass
class _Generation:
    """One process pool, from its start to its shutdown or break."""

    number: int
    pool: cf.ProcessPoolExecutor
    events: Any  # a multiprocessing SimpleQueue (children -> parent)
    drain: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ready: bool = False  # a child finished starting
    started: dict[str, int] = field(default_factory=dict)  # run id -> child pid
    broken: bool = False


class ProcessPool:
    """Runs dispatches in spawned children, and survives children that die.

    Args:
        size: How many children.
        registry: The parent's node types (the importable ones reach the children).
        artifacts: The artifacts folder or URL the children open.
        on_results: Receives finished runs.
        on_event: Receives node events (run id, kind, data) the children send.
        on_start: Receives the run id of each run a child begins.
    """

    def __init__(
        self,
        size: int,
        registry: NodeRegistry,
        artifacts: str | None,
        on_results: ResultsSink,
        on_event: NodeEvent,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self._size = size
        self._on_start = on_start
        self._registry = registry
        self._artifacts = artifacts
        self._on_results = on_results
        self._on_event = on_event
        self._lock = threading.Lock()
        self._current: _Generation | None = None
        self._count = 0
        self._inflight: dict[str, tuple[Dispatch, _Generation]] = {}
        self._breaks: dict[str, int] = {}
        self._closed = False
        self.streams: ManagedStreamHub | None = None  # started by the first streaming run

    def submit(self, dispatch: Dispatch) -> None:
        """Run ``dispatch`` in a child; its result goes to ``on_results``."""
        request = dispatch.to_request(dispatch.job_id, {}).model_dump(mode="json")
        with self._lock:
            if self._closed:
                return
            generation = self._generation()
            hub = None
            if dispatch.node.streams or dispatch.node.live:  # chunks pass through a server
                self.streams = self.streams or ManagedStreamHub.start()
                hub = self.streams.address
            self._inflight[dispatch.run_id] = (dispatch, generation)
        try:
            with sigint_blocked():  # a child the submit starts inherits the mask
                args = (request, hub) if hub is not None else (request,)
                future = generation.pool.submit(run_in_child, *args)
        except BrokenProcessPool:
            self._broke(generation)
            return
        future.add_done_callback(partial(self._finished, dispatch, generation))

    def _generation(self) -> _Generation:
        if self._current is None:
            self._count += 1
            context = multiprocessing.get_context("spawn")
            events = context.SimpleQueue()
            pool = cf.ProcessPoolExecutor(
                max_workers=self._size,
                mp_context=context,
                initializer=init_child,
                initargs=(
                    self._artifacts,
                    _importable(self._registry),
                    events,
                    self._count,
                    logging.getLogger().getEffectiveLevel(),
                ),
            )
            generation = _Generation(self._count, pool, events)
            generation.drain = threading.Thread(
                target=self._drain, args=(generation,), name="segue-process-events", daemon=True
            )
            generation.drain.start()
            self._current = generation
        return self._current

    # results --------------------------------------------------------------------------
    def _finished(
        self, dispatch: Dispatch, generation: _Generation, future: cf.Future[dict[str, Any]]
    ) -> None:
        try:
            result = RunResult.from_json(future.result())
        except BrokenProcessPool:
            self._broke(generation)
            return
        except BaseException as exc:  # the child sent back no result
            result = _failed(dispatch, RunError.of(exc))
        with self._lock:
            self._inflight.pop(dispatch.run_id, None)
            self._breaks.pop(dispatch.run_id, None)
        self._on_results([result])

    def _broke(self, generation: _Generation) -> None:
        # Called for every future of the broken pool, before concurrent.futures
        # terminates the surviving children: the first call notes which died.
        with self._lock:
            if generation.broken:
                return
            generation.broken = True
            if self._current is generation:
                self._current = None
            children = dict(getattr(generation.pool, "_processes", None) or {})
            exits = {pid: child.exitcode for pid, child in children.items()}
        threading.Thread(
            target=self._recover,
            args=(generation, children, exits),
            name="segue-process-recovery",
            daemon=True,
        ).start()

    def _recover(
        self, generation: _Generation, children: dict[int, Any], exits: dict[int, int | None]
    ) -> None:
        for child in children.values():  # then the queue holds all they sent
            child.join(CHILD_EXIT_WAIT_S)
        # A child seen alive when the pool broke may have been dying already
        # (its pipe closes before it can be reaped); one the pool terminated
        # exits of SIGTERM and ran nothing wrong.
        for pid, code in exits.items():
            late = children[pid].exitcode
            if code is None and late != -signal.SIGTERM:
                exits[pid] = late
        generation.stop.set()
        if generation.drain is not None:
            generation.drain.join(CHILD_EXIT_WAIT_S)
        generation.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            mine = [d for d, g in self._inflight.values() if g is generation]
            for dispatch in mine:
                del self._inflight[dispatch.run_id]
        failed: list[RunResult] = []
        again: list[Dispatch] = []
        for dispatch in mine:
            error = self._verdict(dispatch, generation, exits)
            if error is None:
                again.append(dispatch)
            else:
                self._breaks.pop(dispatch.run_id, None)
                failed.append(_failed(dispatch, error))
        if failed:
            self._on_results(failed)
        for dispatch in again:
            self.submit(dispatch)

    def _verdict(
        self, dispatch: Dispatch, generation: _Generation, exits: dict[int, int | None]
    ) -> RunError | None:
        """Why the run fails, or ``None`` when it is submitted again."""
        if not generation.ready:
            codes = sorted({code for code in exits.values() if code is not None})
            return RunError.of(
                MainGuardMissing(
                    f"the process pool's children exited while starting (exit codes "
                    f"{codes}; their errors are on stderr); most often {MAIN_GUARD_HELP}"
                )
            )
        pid = generation.started.get(dispatch.run_id)
        code = exits.get(pid) if pid is not None else None
        breaks = self._breaks[dispatch.run_id] = self._breaks.get(dispatch.run_id, 0) + 1
        if code is None and breaks < MAX_BREAKS:
            return None
        how = _death(code) if code is not None else f"in {breaks} pools that broke"
        return RunError.of(
            ChildProcessDied(
                f"the process running node {dispatch.node_id!r} ({dispatch.type_name}) "
                f"died {how}: a crash or the out-of-memory killer; the run may be retried"
            )
        )

    # events ---------------------------------------------------------------------------
    def _drain(self, generation: _Generation) -> None:
        events, reader = generation.events, generation.events._reader
        while True:
            try:
                if not reader.poll(DRAIN_POLL_S):
                    if generation.stop.is_set():
                        return
                    continue
                message = events.get()
            except (EOFError, OSError, ValueError):  # a child died mid-message
                return
            match message:
                case ("ready", _):
                    generation.ready = True
                case ("start", run_id, pid):
                    generation.started[run_id] = pid
                    if self._on_start is not None:
                        self._on_start(run_id)
                case ("event", run_id, kind, data):
                    with contextlib.suppress(Exception):
                        self._on_event(run_id, kind, data)
                case ("log", logging.LogRecord() as record):
                    # Handled here as if logged here: the parent's handlers and levels.
                    logging.getLogger(record.name).handle(record)

    def close(self, wait: bool = True) -> None:
        """End the pool; without ``wait``, stop running children first."""
        with self._lock:
            self._closed = True
            generation, self._current = self._current, None
        if generation is None:
            return
        if not wait:
            # Abandoned runs: stop them, or the interpreter waits for them at exit.
            for child in (getattr(generation.pool, "_processes", None) or {}).values():
                child.terminate()
        # With the children gone this returns at once, and releases the pool's
        # semaphores now rather than at an exit that may skip cleanup.
        generation.pool.shutdown(wait=True, cancel_futures=True)
        generation.stop.set()
        if self.streams is not None:
            self.streams.shutdown()


def _failed(dispatch: Dispatch, error: RunError) -> RunResult:
    return RunResult(dispatch.run_id, dispatch.attempt, "failed", error=error)


def _death(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"of {signal.Signals(-code).name}"
    return f"with exit code {code}"


def _importable(registry: NodeRegistry) -> list[str]:
    """``module:name`` of the registry's types a child's default registry lacks."""
    defaults = set(default_registry().names())
    return [
        f"{t.__module__}:{t.__qualname__}"
        for t in registry
        if t.type_name not in defaults and "<locals>" not in t.__qualname__
    ]
