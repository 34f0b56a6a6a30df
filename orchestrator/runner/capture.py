"""Capturing a run's log records: its context logger, its own ``logging`` and
its stdout/stderr (DESIGN section 3.16).

One process-wide ``logging`` handler on the root logger and one tee on each of
``sys.stdout`` and ``sys.stderr`` hand what they see to the run the current
context executes (a context variable: threads, asyncio tasks and
``asyncio.to_thread`` each see their own run). Outside a run they pass
everything on as before. A run's log is bounded: the newest
:data:`MAX_RECORDS` records are kept, each message cut to :data:`MAX_MESSAGE`
characters, and a first record says how many older ones were dropped.

A run that logs nothing costs a context-variable set and reset: its log is a
list made on the first record only.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import Any, TextIO

MAX_RECORDS = 1000
"""Records kept per attempt (the newest)."""
MAX_MESSAGE = 8192
"""Characters kept of one record's message."""
NODE_LOGGER = "segue.node"
"""The context logger's name (``ctx.logger``): captured from INFO up."""

LogEntry = list[Any]
"""One record as JSON: ``[at, levelno, logger, message]``."""


class RunLog:
    """The records one attempt logged so far (bounded)."""

    __slots__ = ("_partial", "dropped", "records", "teeing")

    def __init__(self) -> None:
        self.records: deque[LogEntry] | None = None
        self.dropped = 0
        self.teeing = False  # a print is being passed on: a stream that logs it is not news
        self._partial: dict[str, str] | None = None  # made on a first unended print

    def add(self, at: float, level: int, logger: str, message: str) -> None:
        """Keep one record (the oldest goes when :data:`MAX_RECORDS` are kept)."""
        if len(message) > MAX_MESSAGE:
            message = f"{message[:MAX_MESSAGE]}... [{len(message) - MAX_MESSAGE} characters cut]"
        records = self.records
        if records is None:
            records = self.records = deque(maxlen=MAX_RECORDS)
        elif len(records) == MAX_RECORDS:
            self.dropped += 1
        records.append([at, level, logger, message])

    def write(self, stream: str, text: str) -> None:
        """Keep what a print wrote, one record per line."""
        partial = self._partial
        if partial is None:
            partial = self._partial = {}
        text = partial.pop(stream, "") + text
        *lines, rest = text.split("\n")
        if rest:
            partial[stream] = rest
        level = logging.INFO if stream == "stdout" else logging.WARNING
        now = time.time()
        for line in lines:
            self.add(now, level, stream, line)

    @property
    def pending(self) -> bool:
        """Whether a printed line has no end yet."""
        return bool(self._partial)

    def to_json(self) -> dict[str, Any] | None:
        """``{"records", "dropped"}``, or ``None`` when nothing was logged."""
        for stream, rest in list((self._partial or {}).items()):
            del self._partial[stream]  # type: ignore[union-attr]
            level = logging.INFO if stream == "stdout" else logging.WARNING
            self.add(time.time(), level, stream, rest)
        if self.records is None:
            return None
        return {"records": list(self.records), "dropped": self.dropped}


current_log: ContextVar[RunLog | None] = ContextVar("segue_run_log", default=None)
"""The log of the run the current context executes."""


class _Handler(logging.Handler):
    """Hands records logged during a run to its :class:`RunLog`."""

    def emit(self, record: logging.LogRecord) -> None:
        log = current_log.get()
        if log is not None and log.teeing:
            return
        if log is None:
            # The only handler on the root: stand in for logging's last resort,
            # which Python uses when no handler is found, so warnings outside
            # runs still reach stderr as they did before this one was added.
            last = logging.lastResort
            alone = logging.getLogger().handlers == [self]
            if last is not None and alone and record.levelno >= last.level:
                last.handle(record)
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        except Exception:  # a bad format string must not fail the run
            message = str(record.msg)
        log.add(record.created, record.levelno, record.name, message)


class _Tee:
    """A stream that gives what runs print to their logs, and passes all on."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        log = current_log.get()
        if log is None or not text:
            return self._stream.write(text)
        log.write(self._name, text)
        # A host that turns prints into log records (Celery's redirected stdout)
        # would have this print kept twice.
        log.teeing = True
        try:
            return self._stream.write(text)
        finally:
            log.teeing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_handler = _Handler()
_lock = threading.Lock()


def install_capture() -> None:
    """Add the handler to the root logger and tee stdout/stderr (once; again if
    someone replaced them since)."""
    with _lock:
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)
        node = logging.getLogger(NODE_LOGGER)
        if node.level == logging.NOTSET:
            node.setLevel(logging.INFO)
        _tee_streams()


def ensure_tees() -> None:
    """Tee stdout/stderr again if something replaced them since (a test runner's
    capture, a host redirecting prints): checked as each run starts."""
    if type(sys.stdout) is not _Tee or type(sys.stderr) is not _Tee:
        with _lock:
            _tee_streams()


def _tee_streams() -> None:
    if type(sys.stdout) is not _Tee and sys.stdout is not None:
        sys.stdout = _Tee(sys.stdout, "stdout")
    if type(sys.stderr) is not _Tee and sys.stderr is not None:
        sys.stderr = _Tee(sys.stderr, "stderr")
