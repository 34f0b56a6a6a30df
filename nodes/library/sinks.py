"""Sinks that write side effects exactly once per node run."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_core import PydanticSerializationError, to_jsonable_python

from nodes.base import NodeConfig, Ports, Sink
from nodes.context import RunContext
from nodes.errors import FatalNodeError, NodeError
from nodes.library.files import FilePath


@dataclass
class _Scan:
    """What this process already read of one JSONL file."""

    inode: tuple[int, int] = (0, 0)
    offset: int = 0
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


# Per-process memory of each file, so a run reads only the lines appended
# since the last one instead of the whole file. The flock in append_once is
# what makes check-then-append atomic across processes; each scan's own lock
# keeps this process's threads from updating one scan at the same time.
_SCANS: dict[str, _Scan] = {}
_SCANS_LOCK = threading.Lock()


def _forget_after_fork() -> None:
    # A forked child may inherit a lock some other thread held at the fork.
    global _SCANS_LOCK
    _SCANS_LOCK = threading.Lock()
    _SCANS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _scan_of(key: str) -> _Scan:
    with _SCANS_LOCK:
        return _SCANS.setdefault(key, _Scan())


class JsonlSink(Sink):
    """Append ``{"run": run_id, "value": value}`` as one line of a JSONL file.

    Each node run writes at most one line, however often it is retried or
    redelivered and from however many processes: the append holds an exclusive
    ``flock`` on the file and is skipped when a line with the run's id is
    already there. Parent folders are created.
    """

    class Config(NodeConfig):
        path: FilePath = Field(description="The JSONL file to append to")

    class Inputs(Ports):
        value: Any = Field(description="The JSON value to record")

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> None:
        path = Path(self.config.path)
        line = _encode_line(ctx.run_id, inputs.value, ctx.node_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            append_once(path, ctx.run_id, line)
        except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise FatalNodeError(f"node {ctx.node_id!r} cannot write {str(path)!r}: {exc}") from exc
        except OSError as exc:
            raise NodeError(f"node {ctx.node_id!r} failed writing {str(path)!r}: {exc}") from exc


def _encode_line(run: str, value: Any, node_id: str) -> bytes:
    try:
        text = json.dumps(
            {"run": run, "value": to_jsonable_python(value)},
            ensure_ascii=False,
            allow_nan=False,
        )
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise FatalNodeError(f"node {node_id!r} got a value that is not JSON: {exc}") from exc
    return text.encode() + b"\n"


def append_once(path: Path, run: str, line: bytes) -> bool:
    """Append ``line`` to ``path`` unless a line for ``run`` is already there.

    Returns:
        True when the line was written, False when the run was already recorded.
    """
    key = os.path.realpath(path)
    scan = _scan_of(key)
    with scan.lock:
        fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _catch_up(fd, scan)
            if run in scan.seen:
                return False
            size = os.fstat(fd).st_size
            if size > scan.offset:
                # The last line was cut short (a writer died mid-write): end it
                # so ours starts on a line of its own.
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
            scan.offset = size + len(line)
            scan.seen.add(run)
            return True
        finally:
            os.close(fd)


def _catch_up(fd: int, scan: _Scan) -> None:
    """Read the complete lines appended since ``scan`` last looked."""
    stat = os.fstat(fd)
    inode = (stat.st_dev, stat.st_ino)
    if inode != scan.inode or stat.st_size < scan.offset:
        scan.inode, scan.offset, scan.seen = inode, 0, set()
    if stat.st_size == scan.offset:
        return
    tail = os.pread(fd, stat.st_size - scan.offset, scan.offset)
    complete = tail.rfind(b"\n") + 1
    for raw in tail[:complete].splitlines():
        run = _run_of(raw)
        if run is not None:
            scan.seen.add(run)
    scan.offset += complete


def _run_of(raw: bytes) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    run = record.get("run") if isinstance(record, dict) else None
    return run if isinstance(run, str) else None
