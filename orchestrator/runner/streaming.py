"""How the runner drives streaming runs: generators yielding chunks, and
consumers restarted when their producer's stream starts again (DESIGN 3.14)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Generator
from typing import Any

from nodes.base import Node
from orchestrator.results import RunError
from orchestrator.streams.channels import ChannelWriter, StreamHub
from orchestrator.streams.execute import StreamOutput, StreamRestarted, _outs, streams_out

Sends = list[tuple[ChannelWriter, tuple[Any, ...]]]


def stream_output(
    node: Node, spec: Any, hub: StreamHub | None, on_event: Any
) -> StreamOutput | None:
    """The collector of a run whose node type has stream outputs, else ``None``."""
    ports = _outs.get(type(node))  # asked for every run: most types stream nothing
    if ports is None:
        ports = streams_out(type(node))
    if not ports:
        return None
    run_id = spec.run_id
    return StreamOutput(
        node,
        run_id,
        tuple(getattr(spec, "streams", ()) or ()),
        hub,
        lambda kind, data: on_event(run_id, kind, data),
    )


def send(out: StreamOutput, sends: Sends) -> bool:
    """Send messages; ``False`` once every consumer stopped reading."""
    stop = False
    for writer, message in sends:
        if not writer.put(message) and out.closed(writer):
            stop = True
    return not stop


async def asend(out: StreamOutput, sends: Sends) -> bool:
    """:func:`send` for a coroutine."""
    stop = False
    for writer, message in sends:
        if not await writer.aput(message) and out.closed(writer):
            stop = True
    return not stop


def drive(out: StreamOutput, result: Any, attempt: int) -> dict[str, Any]:
    """Run a sync ``run``'s result to its end, sending chunks; return the outputs."""
    send(out, out.begin(attempt))
    if inspect.isgenerator(result):
        gen: Generator[Any, Any, Any] = result
        try:
            for item in gen:
                if not send(out, out.take(item)):
                    break  # every consumer stopped reading: close the generator
        finally:
            gen.close()
    elif result is not None:
        send(out, out.take(result))
    send(out, out.end())
    return out.outputs()


async def adrive(out: StreamOutput, result: Any, attempt: int) -> dict[str, Any]:
    """Run an async ``run``'s result to its end, sending chunks; return the outputs."""
    await asend(out, out.begin(attempt))
    if inspect.isasyncgen(result):
        gen: AsyncGenerator[Any, Any] = result
        try:
            async for item in gen:
                if not await asend(out, out.take(item)):
                    break
        finally:
            await gen.aclose()
    else:
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            await asend(out, out.take(result))
    await asend(out, out.end())
    return out.outputs()


def fail(out: StreamOutput | None, exc: BaseException, attempt: int, attempts: int) -> None:
    """The attempt failed: tell consumers whether the stream starts again (always
    when it restarts because its own input stream did: they restart in turn)."""
    if out is None or not out.writers:
        return
    error = RunError.of(exc, "")
    retry = isinstance(exc, StreamRestarted) or (error.retryable and attempt < attempts)
    with contextlib.suppress(Exception):  # a transport down: consumers end with the job
        send(out, out.failed(f"{error.type}: {error.message}", retry))


async def afail(out: StreamOutput | None, exc: BaseException, attempt: int, attempts: int) -> None:
    """:func:`fail` for a coroutine."""
    if out is None or not out.writers:
        return
    error = RunError.of(exc, "")
    retry = isinstance(exc, StreamRestarted) or (error.retryable and attempt < attempts)
    with contextlib.suppress(Exception):  # a transport down: consumers end with the job
        await asend(out, out.failed(f"{error.type}: {error.message}", retry))
