"""Opening the artifact store a setting names: a local folder or any fsspec URL."""

from __future__ import annotations

import hashlib
from typing import Any

from nodes.artifacts import Artifact, ArtifactStore, LocalArtifactStore
from nodes.errors import ArtifactError


class FsspecArtifactStore:
    """Content-addressed artifacts under an fsspec URL (``s3://bucket/prefix``, ``memory://x``)."""

    def __init__(self, url: str, **options: Any) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)

    def _path(self, digest: str) -> str:
        return f"{self.root}/{digest[:2]}/{digest}"

    def put(self, data: bytes, mime_type: str) -> Artifact:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not self.fs.exists(path):
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(path, data)
        uri = f"{self.url.split('://', 1)[0]}://{path}" if "://" in self.url else path
        return Artifact(uri=uri, mime_type=mime_type, size=len(data), sha256=digest)

    def get(self, artifact: Artifact) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._path(artifact.sha256))
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {artifact.uri} is missing from {self.url}") from exc
        if hashlib.sha256(data).hexdigest() != artifact.sha256:
            raise ArtifactError(f"artifact {artifact.uri} is corrupt (sha256 mismatch)")
        return data


def open_artifacts(location: str) -> ArtifactStore:
    """A local folder (a path or ``file://``) or an fsspec URL."""
    if location.startswith("file://"):
        return LocalArtifactStore(location.removeprefix("file://"))
    if "://" in location:
        return FsspecArtifactStore(location)
    return LocalArtifactStore(location)
