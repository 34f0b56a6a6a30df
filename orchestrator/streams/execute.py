"""The runner's side of streams: driving a generator ``run`` and feeding
``Stream`` inputs (DESIGN 3.14).

A producing run sends each chunk to the channels of its live consumers, keeps
the chunks to return the accumulated value as its recorded output, and
reports them as ``chunk`` events in batches of at most ``CHUNK_EVENT_S``. A
consumer receives an iterator (async for an async ``run``) that reads its
channel in order and ends with the producer's run. Each start of the
producer's run begins with a ``begin`` message: a producer's attempt that
fails and will be retried, or a run that starts again after the consumer read
from it (a redelivered task), makes the iterator raise
:class:`StreamRestarted`, on which the runner starts the consumer again (a
``restart`` event); a failure for good fails the consumer, naming the source.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from nodes.base import Node, Ports
from nodes.errors import FatalNodeError
from nodes.introspect import input_ports, output_ports, stream_ports
from nodes.streams import accumulate
from orchestrator.streams.channels import ChannelReader, ChannelWriter, StreamGone, StreamHub
from orchestrator.streams.marker import channel_key, marked_channel

CHUNK_EVENT_S = 0.005
"""How long chunk events gather before they are reported together."""
Emit = Callable[[str, Any], None]  # (event kind, data) of the running run
_PLAIN = (str, int, float, bool, type(None))


class StreamRestarted(Exception):
    """A stream input's producer failed and is being retried: start the consumer again."""

    def __init__(self, port: str, error: str) -> None:
        super().__init__(f"stream input {port!r} restarted: its producer {error}")
        self.port = port


_adapters: dict[tuple[type[Node], str], TypeAdapter[Any]] = {}
_outs: dict[type[Node], tuple[str, ...]] = {}
_ins: dict[type[Node], tuple[str, ...]] = {}


def _adapter(node_type: type[Node], port: str) -> TypeAdapter[Any]:
    adapter = _adapters.get((node_type, port))
    if adapter is None:
        adapter = TypeAdapter(output_ports(node_type)[port].annotation)
        _adapters[(node_type, port)] = adapter
    return adapter


def streams_out(node_type: type[Node]) -> tuple[str, ...]:
    """The stream output ports of a node type."""
    ports = _outs.get(node_type)
    if ports is None:
        ports = _outs[node_type] = stream_ports(output_ports(node_type))
    return ports


def streams_in(node_type: type[Node]) -> tuple[str, ...]:
    """The stream input ports of a node type."""
    ports = _ins.get(node_type)
    if ports is None:
        ports = _ins[node_type] = stream_ports(input_ports(node_type))
    return ports


# consumers ---------------------------------------------------------------------------
def _message(port: str, message: tuple[Any, ...]) -> Any:
    """The chunk of ``message``, or raise what its end means."""
    kind = message[0]
    if kind == "failed":
        if message[2]:
            raise StreamRestarted(port, f"failed ({message[1]})")
        raise FatalNodeError(f"stream input {port!r}: its producer failed: {message[1]}")
    raise AssertionError(kind)  # pragma: no cover - other kinds are handled by the caller


_NOTHING = object()


class _Reading:
    """What both chunk iterators do with a message."""

    def __init__(self, reader: ChannelReader, port: str) -> None:
        self._reader = reader
        self._port = port
        self._ended = False
        self._begun = False  # a begin or a chunk was read

    def _take(self, message: tuple[Any, ...]) -> Any:
        """The chunk ``message`` carries, or ``_NOTHING``; raises what its end means."""
        kind = message[0]
        if kind == "chunk":
            self._begun = True
            return message[2]
        if kind == "begin":
            if self._begun:  # the producer's run started again (redelivered, resent)
                self._ended = True
                raise StreamRestarted(self._port, "its run started again")
            self._begun = True
        elif kind == "end":
            self._ended = True
        else:
            self._ended = True
            _message(self._port, message)
        return _NOTHING


class ChunkIterator(_Reading):
    """The iterator a sync ``run`` receives on a live ``Stream`` input."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while not self._ended:
            try:
                message = self._reader.get()
            except StreamGone as exc:
                raise FatalNodeError(f"stream input {self._port!r}: {exc}") from None
            chunk = self._take(message)
            if chunk is not _NOTHING:
                return chunk
        raise StopIteration


class AsyncChunkIterator(_Reading):
    """The iterator an async ``run`` receives on a live ``Stream`` input."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while not self._ended:
            try:
                message = await self._reader.aget()
            except StreamGone as exc:
                raise FatalNodeError(f"stream input {self._port!r}: {exc}") from None
            chunk = self._take(message)
            if chunk is not _NOTHING:
                return chunk
        raise StopAsyncIteration


async def _aiter_values(values: list[Any]) -> AsyncIterator[Any]:
    for value in values:
        yield value


def stream_inputs(
    node: Node,
    raw: dict[str, Any],
    hub: StreamHub | None,
    is_async: bool,
    kept: dict[str, ChannelReader],
) -> tuple[dict[str, Any], list[ChannelReader]]:
    """``raw`` with each ``Stream`` input turned into an iterator, and the readers opened.

    A live input reads its channel (through the reader in ``kept``, if a run
    restarted, so it reads on where it was); a plain value (a stream's
    accumulated value, or a non-stream output) is its chunks: a list's items,
    else itself.
    """
    ports = streams_in(type(node))
    if not ports:
        return raw, []
    values = dict(raw)
    readers: list[ChannelReader] = []
    for port in ports:
        if port not in values:
            continue
        value = values[port]
        key = marked_channel(value)
        if key is None:
            chunks = value if isinstance(value, list) else [value]
            values[port] = _aiter_values(chunks) if is_async else iter(chunks)
            continue
        if hub is None:
            raise FatalNodeError(f"stream input {port!r}: this runner has no stream transport")
        reader = kept.get(key)
        if reader is None:
            reader = kept[key] = hub.reader(key)
        readers.append(reader)
        values[port] = AsyncChunkIterator(reader, port) if is_async else ChunkIterator(reader, port)
    return values, readers


def close_readers(readers: list[ChannelReader]) -> None:
    """The consumer ended: its producers stop at their next chunk."""
    for reader in readers:
        reader.close()


# producers ---------------------------------------------------------------------------
class StreamOutput:
    """Collects one producing run's yields and sends its chunks.

    Args:
        node: The producing node.
        run_id: The producing run.
        outlets: (port, consumer) of each live edge it feeds.
        hub: Where the channels are.
        emit: Reports the run's events (``chunk``).
    """

    def __init__(
        self,
        node: Node,
        run_id: str,
        outlets: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        hub: StreamHub | None,
        emit: Emit,
    ) -> None:
        self.node = node
        node_type = type(node)
        self.stream_ports = streams_out(node_type)
        self.chunks: dict[str, list[Any]] = {port: [] for port in self.stream_ports}
        self.values: dict[str, Any] = {}
        self.emit = emit
        self.writers: dict[str, list[ChannelWriter]] = {}
        if outlets:
            if hub is None:
                raise FatalNodeError(f"{node.type_name}: this runner has no stream transport")
            for port, consumer in outlets:
                writer = hub.writer(channel_key(run_id, port, consumer))
                self.writers.setdefault(port, []).append(writer)
        self.open = {port: list(ws) for port, ws in self.writers.items()}
        self._pending: dict[str, list[Any]] = {}
        self._flushed = 0.0  # the first chunk is reported at once

    @property
    def all_writers(self) -> list[ChannelWriter]:
        return [w for ws in self.writers.values() for w in ws]

    def _split(self, item: Any) -> list[tuple[str, Any]]:
        """The chunks of one yield, checked; non-stream values are kept."""
        if isinstance(item, Ports):
            fields = item.model_fields_set
            data = {name: getattr(item, name) for name in fields}
        elif isinstance(item, Mapping):
            data = dict(item)
        else:
            raise FatalNodeError(
                f"{self.node.type_name}.run yielded {type(item).__name__}, "
                f"not {self.node.type_name}.Outputs or a mapping"
            )
        chunks = []
        node_type = type(self.node)
        for port, value in data.items():
            if port in self.chunks:
                if not isinstance(value, _PLAIN):
                    try:
                        adapter = _adapter(node_type, port)
                        value = adapter.dump_python(adapter.validate_python(value), mode="json")
                    except ValidationError as exc:
                        message = exc.errors(include_url=False)[0]["msg"]
                        raise FatalNodeError(
                            f"chunk {len(self.chunks[port])} of output {port!r}: {message}"
                        ) from None
                chunks.append((port, value))
            else:
                self.values[port] = value
        return chunks

    def _keep(self, port: str, value: Any) -> int:
        chunks = self.chunks[port]
        index = len(chunks)
        chunks.append(value)
        pending = self._pending.get(port)
        if pending is None:
            self._pending[port] = [index, value]
        else:
            pending.append(value)
        return index

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._flushed >= CHUNK_EVENT_S:
            self.flush_events()

    def flush_events(self) -> None:
        """Report the chunks gathered since the last report."""
        self._flushed = time.monotonic()
        pending, self._pending = self._pending, {}
        for port, batch in pending.items():
            self.emit("chunk", {"port": port, "index": batch[0], "values": batch[1:]})

    def begin(self, attempt: int) -> list[tuple[ChannelWriter, tuple[Any, ...]]]:
        """The messages that start this attempt's stream: a consumer that had read
        from an earlier start (a redelivered or resent run) starts again."""
        return [(w, ("begin", attempt)) for w in self.all_writers]

    def take(self, item: Any) -> list[tuple[ChannelWriter, tuple[Any, ...]]]:
        """Keep one yield; return the channel messages it makes."""
        sends = []
        for port, value in self._split(item):
            index = self._keep(port, value)
            for writer in self.open.get(port, ()):
                sends.append((writer, ("chunk", index, value)))
        self._maybe_flush()
        return sends

    def closed(self, writer: ChannelWriter) -> bool:
        """``writer``'s consumer stopped: forget it; ``True`` when no consumer reads on."""
        for writers in self.open.values():
            if writer in writers:
                writers.remove(writer)
        return bool(self.writers) and not any(self.open.values())

    def end(self) -> list[tuple[ChannelWriter, tuple[Any, ...]]]:
        """The run ended well: the messages that end each stream."""
        self.flush_events()
        return [(w, ("end",)) for ws in self.open.values() for w in ws]

    def failed(self, error: str, retry: bool) -> list[tuple[ChannelWriter, tuple[Any, ...]]]:
        """The attempt failed: the messages that tell consumers (and whether it goes on)."""
        self.flush_events()
        return [(w, ("failed", error, retry)) for ws in self.open.values() for w in ws]

    def outputs(self) -> dict[str, Any]:
        """The run's outputs: each stream's accumulated value and the other ports."""
        outputs = dict(self.values)
        for port, chunks in self.chunks.items():
            outputs[port] = accumulate(chunks)
        return outputs
