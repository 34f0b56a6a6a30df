"""Heartbeat files: liveness probes read their age instead of pinging a busy process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def beat(path: Path) -> None:
    """Write the current time to ``path`` atomically.

    Each writer has its own temporary file: two beaters of one path (two processes
    sharing a folder, or a beat from ``stop`` racing the beating thread) must not
    rename each other's file away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{time.time():.3f}\n")
    tmp.replace(path)


def age(path: Path) -> float | None:
    """Seconds since the last beat, or ``None`` if there was none."""
    try:
        return time.time() - float(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
