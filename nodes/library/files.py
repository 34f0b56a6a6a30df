"""Nodes that move files and text in and out of the artifact store."""

from __future__ import annotations

import codecs
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from nodes.artifacts import Artifact, Mime
from nodes.base import Node, NodeConfig, Ports
from nodes.context import RunContext
from nodes.errors import FatalNodeError, NodeError

MIME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$"
DEFAULT_MIME = "application/octet-stream"


def _check_encoding(encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown text encoding {encoding!r}") from None
    return encoding


Encoding = Annotated[str, AfterValidator(_check_encoding)]
"""The name of a Python codec, checked when the config is validated."""


def _check_path(path: str) -> str:
    if "\x00" in path:
        raise ValueError(
            "a file path cannot contain a NUL character (\\0): no file system takes it"
        )
    return path


FilePath = Annotated[str, Field(min_length=1), AfterValidator(_check_path)]
"""A local file path: not empty, no NUL character, checked when the config is validated."""


def _file_error(node_id: str, path: str, exc: OSError) -> NodeError:
    if isinstance(exc, FileNotFoundError):
        return FatalNodeError(f"node {node_id!r}: file {path!r} does not exist")
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        return FatalNodeError(f"node {node_id!r}: cannot use {path!r}: {exc}")
    return NodeError(f"node {node_id!r}: I/O error on {path!r}: {exc}")


class ReadFile(Node):
    """Read a local file into the artifact store.

    The MIME type is ``mime_type`` when given, else guessed from the file
    name, else ``application/octet-stream``.
    """

    class Config(NodeConfig):
        path: FilePath = Field(description="The file to read")
        mime_type: str | None = Field(
            default=None, pattern=MIME_PATTERN, description="MIME type; guessed from the name"
        )

    class Outputs(Ports):
        file: Annotated[Artifact, Mime("*/*")] = Field(description="The file's bytes")

    config: Config

    def run(self, inputs: Node.Inputs, ctx: RunContext) -> Outputs:
        path = self.config.path
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise _file_error(ctx.node_id, path, exc) from exc
        mime = self.config.mime_type or mimetypes.guess_type(path)[0] or DEFAULT_MIME
        return self.Outputs(file=ctx.artifacts.put(data, mime))


class WriteFile(Node):
    """Write an artifact's bytes to a local file, atomically.

    The bytes go to a temporary file beside the target, which then replaces
    it, so readers never see half a file. Parent folders are created.
    """

    class Config(NodeConfig):
        path: FilePath = Field(description="The file to write (replaced if present)")

    class Inputs(Ports):
        file: Annotated[Artifact, Mime("*/*")] = Field(description="The bytes to write")

    class Outputs(Ports):
        path: str = Field(description="Absolute path of the written file")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        data = ctx.artifacts.get(inputs.file)
        target = Path(self.config.path).absolute()
        try:
            write_atomically(target, data)
        except OSError as exc:
            raise _file_error(ctx.node_id, self.config.path, exc) from exc
        return self.Outputs(path=str(target))


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ReadText(Node):
    """Decode a text artifact into a string."""

    class Config(NodeConfig):
        encoding: Encoding = Field(default="utf-8", description="Text encoding of the bytes")

    class Inputs(Ports):
        file: Annotated[Artifact, Mime("text/*")] = Field(description="The text file")

    class Outputs(Ports):
        text: str = Field(description="The decoded text")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        data = ctx.artifacts.get(inputs.file)
        try:
            text = data.decode(self.config.encoding)
        except UnicodeDecodeError as exc:
            raise FatalNodeError(
                f"node {ctx.node_id!r}: artifact {inputs.file.uri} is not "
                f"{self.config.encoding} text ({exc}); set `encoding` to the file's encoding"
            ) from exc
        return self.Outputs(text=text)


class WriteText(Node):
    """Encode a string into a text artifact."""

    class Config(NodeConfig):
        mime_type: str = Field(
            default="text/plain",
            pattern=MIME_PATTERN,
            description="MIME type of the artifact; must be text/*",
        )
        encoding: Encoding = Field(default="utf-8", description="Text encoding of the bytes")

        @field_validator("mime_type")
        @classmethod
        def _mime_is_text(cls, mime_type: str) -> str:
            if not mime_type.lower().startswith("text/"):
                raise ValueError(f"mime_type must start with 'text/', got {mime_type!r}")
            return mime_type

    class Inputs(Ports):
        text: str = Field(description="The text to store")

    class Outputs(Ports):
        file: Annotated[Artifact, Mime("text/*")] = Field(description="The encoded text")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        try:
            data = inputs.text.encode(self.config.encoding)
        except UnicodeEncodeError as exc:
            raise FatalNodeError(
                f"node {ctx.node_id!r}: the text cannot be encoded as "
                f"{self.config.encoding} ({exc}); pick another `encoding`"
            ) from exc
        return self.Outputs(file=ctx.artifacts.put(data, self.config.mime_type))
