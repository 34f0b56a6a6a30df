"""Executing one attempt: inputs prepared (stream inputs as iterators), the cache
asked, the node run, a generator driven to its end (DESIGN 3.14), the outcome
made into a result. :class:`Executing` is the part of
:class:`~orchestrator.runner.NodeRunner` that does it."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol

from nodes.base import Node
from nodes.errors import FatalNodeError
from orchestrator.results import RunResult
from orchestrator.runner.streaming import adrive, afail, drive, fail, stream_output
from orchestrator.streams.channels import ChannelReader, StreamHub
from orchestrator.streams.execute import StreamRestarted, close_readers

if TYPE_CHECKING:
    from nodes.artifacts import ArtifactStore
    from nodes.context import RunContext
    from orchestrator.runner.spec import Cache, NodeEvent, RunSpec
    from orchestrator.runner.traits import Traits


class _Runner(Protocol):
    """What :class:`Executing` uses of the runner it is part of."""

    artifacts: ArtifactStore
    cache: Cache | None
    streams: StreamHub | None
    on_event: NodeEvent

    def _queue_node(self, node: Node, spec: RunSpec, started: float) -> RunResult: ...
    def _context(self, spec: RunSpec) -> RunContext: ...
    def _done(
        self, spec: RunSpec, status: str, outputs: dict[str, Any], started: float
    ) -> RunResult: ...
    def _finish(
        self,
        spec: RunSpec,
        node: Node,
        traits: Traits,
        result: Any,
        key: str | None,
        started: float,
    ) -> RunResult: ...
    def _produced(
        self, spec: RunSpec, node: Node, traits: Traits, result: Any, started: float
    ) -> RunResult: ...
    def _execute_once(
        self,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        started: float,
        kept: dict[str, ChannelReader],
    ) -> RunResult: ...
    async def _execute_async_once(
        self,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        started: float,
        kept: dict[str, ChannelReader],
    ) -> RunResult: ...
    def _prepare(
        self,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        is_async: bool,
        kept: dict[str, ChannelReader],
    ) -> tuple[Any, str | None, list[ChannelReader]]: ...


class Executing:
    """Runs one attempt of a node run (sync or async), streams included."""

    def _execute(
        self: _Runner, node: Node, traits: Traits, spec: RunSpec, started: float
    ) -> RunResult:
        if traits.queue:
            return self._queue_node(node, spec, started)
        kept: dict[str, ChannelReader] = {}  # a restarted run reads on
        while True:
            try:
                return self._execute_once(node, traits, spec, started, kept)
            except StreamRestarted as exc:  # its producer starts its stream again
                self.on_event(spec.run_id, "restart", {"port": exc.port})

    def _execute_once(
        self: _Runner,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        started: float,
        kept: dict[str, ChannelReader],
    ) -> RunResult:
        out = stream_output(node, spec, self.streams, self.on_event) if traits.streams_out else None
        readers: list[ChannelReader] = []
        try:
            inputs, key, readers = self._prepare(node, traits, spec, False, kept)
            if key is not None and self.cache is not None:
                hit = self.cache.cache_get(key)
                if hit is not None:
                    if out is not None:
                        drive(out, _chunks_of(hit, out.stream_ports), spec.attempt)
                    return self._done(spec, "cached", hit, started)
            ctx = self._context(spec)
            if spec.kind == "produce":
                produced = node.produce(inputs, spec.cursor, ctx)  # type: ignore[attr-defined]
                return self._produced(spec, node, traits, produced, started)
            result = node.run(inputs, ctx)
            if out is not None:
                result = drive(out, result, spec.attempt)
            elif inspect.isgenerator(result):
                result.close()
                raise FatalNodeError(_no_stream_ports(spec))
            return self._finish(spec, node, traits, result, key, started)
        except StreamRestarted as exc:
            readers = []  # read on by the restarted run
            fail(out, exc, spec.attempt, 0)  # its own consumers restart too
            raise
        except BaseException as exc:
            fail(out, exc, spec.attempt, getattr(spec, "attempts", 1))
            raise
        finally:
            if readers:
                close_readers(readers)

    async def _execute_async(
        self: _Runner, node: Node, traits: Traits, spec: RunSpec, started: float
    ) -> RunResult:
        kept: dict[str, ChannelReader] = {}
        while True:
            try:
                return await self._execute_async_once(node, traits, spec, started, kept)
            except StreamRestarted as exc:
                self.on_event(spec.run_id, "restart", {"port": exc.port})

    async def _execute_async_once(
        self: _Runner,
        node: Node,
        traits: Traits,
        spec: RunSpec,
        started: float,
        kept: dict[str, ChannelReader],
    ) -> RunResult:
        out = stream_output(node, spec, self.streams, self.on_event) if traits.streams_out else None
        readers: list[ChannelReader] = []
        try:
            inputs, key, readers = self._prepare(node, traits, spec, True, kept)
            if key is not None and self.cache is not None:
                hit = self.cache.cache_get(key)
                if hit is not None:
                    if out is not None:
                        await adrive(out, _chunks_of(hit, out.stream_ports), spec.attempt)
                    return self._done(spec, "cached", hit, started)
            ctx = self._context(spec)
            if spec.kind == "produce":
                produced = await node.produce(inputs, spec.cursor, ctx)  # type: ignore[attr-defined]
                return self._produced(spec, node, traits, produced, started)
            result = node.run(inputs, ctx)
            if out is not None:
                result = await adrive(out, result, spec.attempt)
            elif inspect.isasyncgen(result):
                await result.aclose()
                raise FatalNodeError(_no_stream_ports(spec))
            else:
                result = await result
            return self._finish(spec, node, traits, result, key, started)
        except StreamRestarted as exc:
            readers = []
            await afail(out, exc, spec.attempt, 0)
            raise
        except BaseException as exc:
            await afail(out, exc, spec.attempt, getattr(spec, "attempts", 1))
            raise
        finally:
            if readers:
                close_readers(readers)


def _chunks_of(outputs: dict[str, Any], ports: tuple[str, ...]) -> dict[str, Any]:
    """Cached outputs sent to live consumers: each stream's value as one chunk."""
    return {port: outputs[port] for port in ports if port in outputs}


def _no_stream_ports(spec: RunSpec) -> str:
    return (
        f"{spec.type_name}.run is a generator but declares no Stream output: "
        "type an output port Stream[T] to yield chunks on it"
    )
