"""Built-in streaming node types: ``Tokens`` and ``Join`` (DESIGN section 6),
and ``Take`` and ``FlakyStream`` for building and testing stream pipelines."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import Field

from nodes.base import Node, NodeConfig, Ports
from nodes.context import RunContext
from nodes.errors import NodeError
from nodes.streams import Stream


def split_tokens(text: str, separator: str) -> list[str]:
    """``text`` cut after each ``separator`` (kept on the token it follows);
    every character when ``separator`` is empty. Joining gives ``text`` back."""
    if not separator:
        return list(text)
    parts = text.split(separator)
    tokens = [part + separator for part in parts[:-1]]
    if parts[-1]:
        tokens.append(parts[-1])
    return tokens


class Tokens(Node):
    """Stream a text token by token: one chunk per token, separators kept.

    Each token keeps the separator that follows it, so joining the chunks
    gives the text back. With ``interval_s`` each token after the first waits
    that long (a stand-in for a model generating text).
    """

    class Config(NodeConfig):
        separator: str = Field(default=" ", description="What tokens end with ('' for characters)")
        interval_s: float = Field(default=0.0, ge=0, description="Seconds between tokens")

    class Inputs(Ports):
        text: str = Field(description="The text to stream")

    class Outputs(Ports):
        token: Stream[str] = Field(description="The tokens, one chunk each")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Iterator[Outputs]:
        interval = self.config.interval_s
        for index, token in enumerate(split_tokens(inputs.text, self.config.separator)):
            if interval and index:
                time.sleep(interval)
            yield self.Outputs(token=token)


class Join(Node):
    """Join a stream of text chunks into one text, ``separator`` between chunks."""

    class Config(NodeConfig):
        separator: str = Field(default="", description="Put between chunks")

    class Inputs(Ports):
        tokens: Stream[str] = Field(description="The chunks to join")

    class Outputs(Ports):
        text: str = Field(description="The joined text")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        tokens: Iterator[str] = inputs.tokens  # type: ignore[assignment]
        return self.Outputs(text=self.config.separator.join(tokens))


class Take(Node):
    """Pass a stream's chunks on as they come, stopping after ``count`` of them.

    Stopping early closes the upstream stream (its producer's generator ends).
    Without ``count`` every chunk passes.
    """

    class Config(NodeConfig):
        count: int | None = Field(default=None, ge=0, description="Chunks to pass (None: all)")

    class Inputs(Ports):
        items: Stream[Any] = Field(description="The chunks to read")

    class Outputs(Ports):
        items: Stream[Any] = Field(description="The chunks passed on")

    config: Config

    async def run(self, inputs: Inputs, ctx: RunContext) -> AsyncIterator[Outputs]:
        count = self.config.count
        if count == 0:
            return
        taken = 0
        items: AsyncIterator[Any] = inputs.items  # type: ignore[assignment]
        async for item in items:
            yield self.Outputs(items=item)
            taken += 1
            if count is not None and taken >= count:
                break


class FlakyStream(Node):
    """Stream a text token by token, failing mid-stream on purpose (for tests).

    Attempts up to ``fail_times`` raise a retryable error after ``fail_after``
    tokens; later attempts stream the whole text.
    """

    class Config(NodeConfig):
        fail_after: int = Field(default=1, ge=0, description="Tokens sent before failing")
        fail_times: int = Field(default=1, ge=0, description="Attempts that fail")
        separator: str = Field(default=" ", description="What tokens end with")

    class Inputs(Ports):
        text: str = Field(description="The text to stream")

    class Outputs(Ports):
        token: Stream[str] = Field(description="The tokens, one chunk each")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Iterator[Outputs]:
        config = self.config
        for index, token in enumerate(split_tokens(inputs.text, config.separator)):
            if ctx.attempt <= config.fail_times and index == config.fail_after:
                raise NodeError(
                    f"node {ctx.node_id!r} (FlakyStream) fails attempt {ctx.attempt} after "
                    f"{index} tokens on purpose"
                )
            yield self.Outputs(token=token)
