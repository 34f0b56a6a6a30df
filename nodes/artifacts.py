"""Artifacts: references to bytes kept outside the JSON that crosses the broker.

A node output too large to travel inline, or a file a node reads or writes,
travels as an :class:`Artifact` - ``{uri, mime_type, size, sha256}`` - while
the bytes live in an :class:`ArtifactStore`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from nodes.errors import ArtifactError


class Artifact(BaseModel):
    """A reference to bytes in an artifact store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str = Field(description="Where the bytes are, e.g. file:///var/segue/artifacts/ab/abcd…")
    mime_type: str = Field(description="The MIME type of the bytes, e.g. image/png")
    size: int = Field(ge=0, description="Length in bytes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex digest of the bytes")


@dataclass(frozen=True)
class Mime:
    """Port annotation naming the MIME types an artifact port accepts or produces.

    ``Annotated[Artifact, Mime("image/*")]`` on an input accepts any image;
    on an output it promises one. Patterns use shell wildcards.
    """

    patterns: tuple[str, ...]

    def __init__(self, *patterns: str) -> None:
        object.__setattr__(self, "patterns", tuple(patterns) or ("*/*",))


def mime_matches(mime_type: str, pattern: str) -> bool:
    """Whether a concrete or wildcard MIME type falls under ``pattern``."""
    return fnmatch.fnmatchcase(mime_type.lower(), pattern.lower())


def mime_compatible(produced: tuple[str, ...], accepted: tuple[str, ...]) -> bool:
    """Whether something produced as any of ``produced`` may be accepted.

    Both sides may hold wildcards; the edge is compatible when some produced
    pattern and some accepted pattern can denote the same type.
    """
    return any(mime_matches(p, a) or mime_matches(a, p) for p in produced for a in accepted)


@runtime_checkable
class ArtifactStore(Protocol):
    """Where artifact bytes live. Implementations must be safe across threads."""

    def put(self, data: bytes, mime_type: str) -> Artifact:
        """Store ``data`` and return its reference."""
        ...

    def get(self, artifact: Artifact) -> bytes:
        """Return the bytes an artifact refers to, checking their digest."""
        ...


def _describe(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)


def _checked(artifact: Artifact, data: bytes) -> bytes:
    digest, _ = _describe(data)
    if digest != artifact.sha256:
        raise ArtifactError(
            f"artifact {artifact.uri} is corrupt: sha256 {digest} differs from {artifact.sha256}"
        )
    return data


class MemoryArtifactStore:
    """Artifact store in process memory, for tests and short embedded runs."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes, mime_type: str) -> Artifact:
        digest, size = _describe(data)
        with self._lock:
            self._blobs[digest] = bytes(data)
        return Artifact(uri=f"memory://{digest}", mime_type=mime_type, size=size, sha256=digest)

    def get(self, artifact: Artifact) -> bytes:
        with self._lock:
            data = self._blobs.get(artifact.sha256)
        if data is None:
            raise ArtifactError(f"artifact {artifact.uri} is not in this memory store")
        return _checked(artifact, data)


class LocalArtifactStore:
    """Content-addressed artifact store in a local folder.

    Bytes are written once under ``root/<first two hex digits>/<sha256>``;
    writing the same bytes twice is a no-op, so a retried node run never
    duplicates storage.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, data: bytes, mime_type: str) -> Artifact:
        digest, size = _describe(data)
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return Artifact(uri=path.resolve().as_uri(), mime_type=mime_type, size=size, sha256=digest)

    def get(self, artifact: Artifact) -> bytes:
        path = self._path(artifact.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {artifact.uri} is missing from {self.root}") from exc
        return _checked(artifact, data)
