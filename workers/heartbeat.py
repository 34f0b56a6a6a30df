"""A worker bootstep that touches a heartbeat file for liveness probes.

``celery inspect ping`` is slow and fails on a busy solo worker; a probe that
reads the file's age does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import bootsteps

from orchestrator.heartbeat import beat
from workers import runtime as runtimes


class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Touches ``settings.heartbeat_path`` every ``heartbeat_interval_s`` while the worker runs."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref: Any = None

    def start(self, worker: Any) -> None:
        settings = runtimes._settings
        if settings is None or settings.heartbeat_path is None:
            return
        path = Path(settings.heartbeat_path)
        beat(path)
        self.timer_ref = worker.timer.call_repeatedly(settings.heartbeat_interval_s, beat, (path,))

    def stop(self, worker: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
