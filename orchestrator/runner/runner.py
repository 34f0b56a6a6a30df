"""Running one node run: the same code in every executor and on every worker.

The runner builds the node from the registry (never from anything a workflow
says but a registered type name), validates its inputs against the type's
ports, runs it (sync or async), offloads large outputs to artifacts, uses the
cache when asked, and turns every outcome - exceptions included - into a
:class:`~orchestrator.results.RunResult` (a failure keeps its traceback).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from nodes.artifacts import ArtifactStore
from nodes.base import Exhausted, Node, Produced, Role
from nodes.context import RunContext
from nodes.errors import FatalNodeError
from nodes.registry import NodeRegistry
from orchestrator.queues.base import QueueBackend, queue_key
from orchestrator.results import RunError, RunResult, format_exception
from orchestrator.runner.capture import RunLog, current_log, ensure_tees, install_capture
from orchestrator.runner.executing import Executing
from orchestrator.runner.mime import check_inputs, check_outputs
from orchestrator.runner.spec import Cache, NodeEvent, RunSpec
from orchestrator.runner.traits import Traits, traits_of
from orchestrator.runner.values import DEFAULT_THRESHOLD, cache_key, offload, restore
from orchestrator.streams.channels import ChannelReader, StreamHub
from orchestrator.streams.execute import stream_inputs

QUEUE_POLL_S = 0.05
_HERE = os.path.dirname(__file__) + os.sep
_MACHINERY = (
    __file__,
    _HERE + "executing.py",
    _HERE + "streaming.py",
    os.path.dirname(asyncio.__file__) + os.sep,
)
"""Where the frames above a node's own code are: the runner's modules, and asyncio's loop."""
NODE_CACHE_SIZE = 4096


def _ignore(run_id: str, kind: str, data: Any) -> None:
    """Default node-event sink."""


class NodeRunner(Executing):
    """Executes node runs.

    Args:
        registry: Where node types come from.
        artifacts: Artifact store for file nodes and large outputs.
        cache: Cache for ``cache: true`` nodes (``None``: never cached).
        queues: Queue backend for queue nodes.
        threshold: Outputs whose JSON is larger become artifacts.
        on_event: Receives node events (progress, previews).
        worker: The name recorded for runs executed here.
        host_stops: Whether a node's KeyboardInterrupt on the main thread or
            SystemExit subclass stops this process (as the host's own stop
            would), rather than failing the run (``False`` in a process-pool
            child, where Ctrl-C never lands).
        streams: Where the channels of live stream edges are (``None``: a run
            with a live stream edge fails, naming the missing transport).
    """

    def __init__(
        self,
        registry: NodeRegistry,
        artifacts: ArtifactStore,
        cache: Cache | None = None,
        queues: QueueBackend | None = None,
        threshold: int = DEFAULT_THRESHOLD,
        on_event: NodeEvent = _ignore,
        worker: str | None = None,
        host_stops: bool = True,
        streams: StreamHub | None = None,
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.cache = cache
        self.queues = queues
        self.threshold = threshold
        self.on_event = on_event
        self.worker = worker
        self.host_stops = host_stops
        self.streams = streams
        self._nodes: dict[int, tuple[Any, Node, Traits]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        install_capture()

    # public -------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunResult:
        """Execute one attempt in the calling thread (async nodes get a thread-local loop)."""
        started = time.time()
        ensure_tees()
        log = RunLog()
        token = current_log.set(log)
        try:
            node, traits = self._node(spec)
            if traits.is_async:
                loop = self._event_loop()
                return loop.run_until_complete(self._execute_async(node, traits, spec, started))
            return self._execute(node, traits, spec, started)
        except BaseException as exc:
            return self._failure(spec, exc, started)
        finally:
            current_log.reset(token)
            if log.records is not None or log.pending:
                self._logged(spec, log)

    async def run_async(self, spec: RunSpec) -> RunResult:
        """Execute one attempt on the running event loop (sync nodes run in a thread)."""
        started = time.time()
        ensure_tees()
        log = RunLog()
        token = current_log.set(log)
        try:
            node, traits = self._node(spec)
            if traits.is_async:
                return await self._execute_async(node, traits, spec, started)
            return await asyncio.to_thread(self._execute, node, traits, spec, started)
        except BaseException as exc:
            return self._failure(spec, exc, started)
        finally:
            current_log.reset(token)
            if log.records is not None or log.pending:
                self._logged(spec, log)

    def _logged(self, spec: RunSpec, log: RunLog) -> None:
        """Hand a run's log to the event sink (as a ``logs`` event); never fails the run."""
        data = log.to_json()
        if data is not None:
            data["attempt"] = spec.attempt
            try:
                self.on_event(spec.run_id, "logs", data)
            except Exception as exc:  # the run's outcome matters more than its log
                logging.getLogger("segue.runner").warning(
                    "could not keep the log of run %s: %s", spec.run_id, exc
                )

    # building -----------------------------------------------------------------------
    def _node(self, spec: RunSpec) -> tuple[Node, Traits]:
        # Node instances are reused per config object: the cache holds the config
        # itself, so its id cannot be reused by another object while cached.
        settings = getattr(spec, "settings", None)  # a scheduler Dispatch carries it
        config = spec.config if settings is None else settings
        entry = self._nodes.get(id(config))
        if entry is not None and entry[0] is config and entry[1].type_name == spec.type_name:
            return entry[1], entry[2]
        node_type = self.registry.get(spec.type_name)
        if settings is not None and isinstance(settings, node_type.Config):
            node = node_type(settings)
        else:
            node = node_type.from_config(dict(spec.config))
        with self._lock:
            if len(self._nodes) >= NODE_CACHE_SIZE:
                self._nodes.clear()
            traits = traits_of(node_type)
            self._nodes[id(config)] = (config, node, traits)
        return node, traits

    def _context(self, spec: RunSpec) -> RunContext:
        run_id = spec.run_id
        on_event = self.on_event
        return RunContext(
            run_id=run_id,
            job_id=spec.job_id,
            loop=spec.loop,
            iteration=spec.iteration,
            node_id=spec.node_id,
            attempt=spec.attempt,
            artifacts=self.artifacts,
            job_inputs=spec.job_inputs,
            progress_sink=lambda f, m: on_event(run_id, "progress", {"fraction": f, "message": m}),
            event_sink=lambda kind, data: on_event(run_id, kind, data),
        )

    # executing ----------------------------------------------------------------------
    def _prepare(
        self,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        is_async: bool,
        kept: dict[str, ChannelReader],
    ) -> tuple[Any, str | None, list[ChannelReader]]:
        raw = restore(spec.inputs, self.artifacts) if spec.inputs else spec.inputs
        readers: list[ChannelReader] = []
        if raw and traits.streams_in:
            raw, readers = stream_inputs(node, raw, self.streams, is_async, kept)
        try:
            inputs = node.Inputs.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            # loc[0] is the port; the rest may name a union member (``a.int``), not a field.
            port = str(first["loc"][0]) if first["loc"] else "inputs"
            got = "" if first["type"] == "missing" else f" (got {first.get('input')!r:.80})"
            raise FatalNodeError(
                f"input {port!r} of {spec.node_id!r}: {first['msg']}{got}"
            ) from None
        if traits.mime_in:
            check_inputs(node, spec, inputs)
        key = None
        if spec.cache and spec.kind == "run" and not readers:
            key = cache_key(spec.type_name, spec.type_version, spec.config, spec.inputs)
        return inputs, key, readers

    def _finish(
        self,
        spec: RunSpec,
        node: Node,
        traits: Traits,
        result: Any,
        key: str | None,
        started: float,
    ) -> RunResult:
        if not isinstance(result, node.Outputs) and isinstance(result, Mapping):
            result = node.Outputs.model_validate(result)
        if isinstance(result, node.Outputs):
            if traits.mime_out:
                check_outputs(node, spec, result)
            outputs = result.model_dump(mode="json")
        elif result is None and not node.Outputs.model_fields:
            outputs = {}
        else:
            raise FatalNodeError(
                f"{spec.type_name}.run returned {type(result).__name__}, "
                f"not {spec.type_name}.Outputs"
            )
        outputs = offload(outputs, self.artifacts, self.threshold) if outputs else outputs
        if key is not None and self.cache is not None:
            self.cache.cache_put(key, spec.type_name, outputs, time.time())
        return self._done(spec, "succeeded", outputs, started)

    def _produced(
        self, spec: RunSpec, node: Node, traits: Traits, result: Any, started: float
    ) -> RunResult:
        if isinstance(result, Exhausted):
            return RunResult(
                spec.run_id,
                spec.attempt,
                "succeeded",
                {},
                exhausted=True,
                started_at=started,
                finished_at=time.time(),
                worker=self.worker,
            )
        if not isinstance(result, Produced):
            raise FatalNodeError(
                f"{spec.type_name}.produce returned {type(result).__name__}, "
                "not Produced or EXHAUSTED"
            )
        if traits.mime_out:
            check_outputs(node, spec, result.outputs)
        outputs = offload(result.outputs.model_dump(mode="json"), self.artifacts, self.threshold)
        return RunResult(
            spec.run_id,
            spec.attempt,
            "succeeded",
            outputs,
            cursor=result.cursor,
            started_at=started,
            finished_at=time.time(),
            worker=self.worker,
        )

    def _queue_node(self, node: Node, spec: RunSpec, started: float) -> RunResult:
        queues = self.queues
        if queues is None:
            raise FatalNodeError(f"{spec.type_name} needs a queue backend; this runner has none")
        config = node.config
        name = queue_key(spec.job_id, config.queue, config.scope)
        if node.role is Role.QUEUE_WRITER:
            queues.publish(name, restore(spec.inputs, self.artifacts).get("value"), spec.run_id)
            return self._done(spec, "succeeded", {}, started)
        group = config.group or spec.loop
        message = queues.receive(name, group, QUEUE_POLL_S)
        if message is None:
            exhausted = bool(spec.writers_done) and queues.depth(name, group) == 0
            return RunResult(
                spec.run_id,
                spec.attempt,
                "succeeded",
                {},
                cursor=spec.cursor,
                exhausted=exhausted,
                idle=not exhausted,
                started_at=started,
                finished_at=time.time(),
                worker=self.worker,
            )
        return RunResult(
            spec.run_id,
            spec.attempt,
            "succeeded",
            {"item": message.value},
            cursor=spec.cursor,
            delivery=message.id,
            started_at=started,
            finished_at=time.time(),
            worker=self.worker,
        )

    def _done(
        self, spec: RunSpec, status: str, outputs: dict[str, Any], started: float
    ) -> RunResult:
        return RunResult(
            spec.run_id,
            spec.attempt,
            status,
            outputs,
            started_at=started,
            finished_at=time.time(),
            worker=self.worker,
        )

    def _failure(self, spec: RunSpec, exc: BaseException, started: float) -> RunResult:
        # sys.exit(), KeyboardInterrupt and other BaseExceptions a node raises fail
        # its run like any error: re-raised, they would end the pool thread (or the
        # child) that runs it and lose the other runs handed over with it.
        if self.host_stops and _host_stop(exc):
            raise exc
        error = RunError.of(exc, _node_traceback(exc))
        if not isinstance(exc, Exception):
            error = error._replace(message=_base_exception_message(spec, exc))
        return RunResult(
            spec.run_id,
            spec.attempt,
            "failed",
            None,
            error,
            started_at=started,
            finished_at=time.time(),
            worker=self.worker,
        )

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop


def _node_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the first frame that is not the runner's own
    machinery (the node's code, for an exception the node raised): what an
    operator reads. An exception the runner raised itself keeps every frame."""
    first = exc.__traceback__
    while first is not None and first.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        first = first.tb_next
    if first is None or first is exc.__traceback__:
        return format_exception(exc)
    return format_exception(exc.with_traceback(first))


def _host_stop(exc: BaseException) -> bool:
    """Whether ``exc`` stops the process running the node rather than the node:
    a SystemExit subclass (Celery's WorkerShutdown and WorkerTerminate, raised by
    its signal handlers), or a KeyboardInterrupt on the main thread, where Ctrl-C
    lands. The run is then left to the host's redelivery, as before."""
    if isinstance(exc, SystemExit):
        return type(exc) is not SystemExit
    return isinstance(exc, KeyboardInterrupt) and (
        threading.current_thread() is threading.main_thread()
    )


def _base_exception_message(spec: RunSpec, exc: BaseException) -> str:
    """What a run that raised a ``BaseException`` (not an ``Exception``) failed of."""
    if isinstance(exc, SystemExit):
        what = f"called sys.exit({exc.code!r})"
    else:
        detail = f": {exc}" if str(exc) else ""
        what = f"raised {type(exc).__name__}{detail}"
    return (
        f"node {spec.node_id!r} ({spec.type_name}) {what}; a node must return its "
        "outputs or raise an Exception, never end the process"
    )
