"""Run logs: keeping what a run's capture gathered, and reading a job's logs
back with the tracebacks of its failed runs (DESIGN section 3.16).

A runner hands a run's log to its event sink as a ``logs`` node event
(``{"attempt", "records", "dropped"}``, records as ``[at, level, logger,
message]``); whoever executed the run keeps it with :func:`keep_logs`: the
embedded engine's driver from its pools (process-pool children's logs come
through the parent), a Celery worker itself. The log of a run that logged
nothing is never written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from nodes.ids import RunId
from orchestrator.errors import NotInJobError, UnknownJobError
from orchestrator.runner.capture import MAX_RECORDS
from orchestrator.store.base import LogRecord, RunRecord, Store
from orchestrator.views import LogLine, LogQuery

LOGS_EVENT = "logs"
"""The node-event kind a run's log travels as."""

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The level names ``segue logs --level`` takes."""

READ_LIMIT = 10_000
"""The most log records one read returns."""
TRACEBACK_LOGGER = "traceback"
"""The logger name a failed run's traceback is shown under."""


def level_number(name: str) -> int:
    """The ``logging`` level of a name from :data:`LEVELS` (any case).

    Raises:
        ValueError: Not a level name (the message names it and the levels).
    """
    upper = name.upper()
    if upper not in LEVELS:
        raise ValueError(f"unknown log level {name!r}: one of {', '.join(LEVELS)}")
    return int(getattr(logging, upper))


def log_records(run_id: str, data: Mapping[str, Any]) -> tuple[int, list[LogRecord]]:
    """The attempt and store records of a ``logs`` event's data.

    When records were dropped, a first record says how many.

    Raises:
        ValueError: ``run_id`` or ``data`` is malformed.
    """
    run = RunId.parse(run_id)
    attempt = data.get("attempt")
    entries = data.get("records")
    if type(attempt) is not int or not isinstance(entries, list):
        raise ValueError("a run log needs an integer 'attempt' and a list of 'records'")
    made = [
        LogRecord(run_id, run.job, run.loop, run.iteration, run.node, attempt, *_entry(e))
        for e in entries
    ]
    dropped = int(data.get("dropped") or 0)
    if dropped:
        at = made[0].at if made else 0.0
        note = (
            f"{dropped} earlier log records of this attempt were dropped "
            f"(the newest {MAX_RECORDS} are kept)"
        )
        made.insert(
            0,
            LogRecord(
                run_id, run.job, run.loop, run.iteration, run.node, attempt,
                at, logging.WARNING, "segue", note,
            ),
        )  # fmt: skip
    return attempt, made


def _entry(entry: Any) -> tuple[float, int, str, str]:
    if not isinstance(entry, list) or len(entry) != 4:
        raise ValueError("a run log record is [at, level, logger, message]")
    at, level, logger, message = entry
    return float(at), int(level), str(logger), str(message)


def keep_logs(store: Store, run_id: str, data: Mapping[str, Any]) -> None:
    """Save a ``logs`` event's records with their run."""
    attempt, records = log_records(run_id, data)
    store.save_logs(run_id, attempt, records)


def traceback_records(runs: list[RunRecord]) -> list[LogRecord]:
    """A record for each traceback the runs keep (their latest failed attempt)."""
    out: list[LogRecord] = []
    for run in runs:
        if run.traceback and run.status in ("failed", "retrying"):
            at = run.finished_at or run.started_at or 0.0
            out.append(
                LogRecord(
                    run.run_id, run.job_id, run.loop, run.iteration, run.node_id, run.attempt,
                    at, logging.ERROR, TRACEBACK_LOGGER, run.traceback.rstrip("\n"),
                )
            )  # fmt: skip
    return out


def read_logs(store: Store, query: LogQuery, limit: int = READ_LIMIT) -> list[LogLine]:
    """A job's log lines with ``id > query.after`` and the tracebacks of its failed
    runs (all of them, whatever ``after``: they are few), by time.

    Raises:
        UnknownJobError: There is no such job.
        NotInJobError: The job has no such loop or node.
        ValueError: ``query.level`` is not a level name.
    """
    job = store.get_job(query.job)
    if job is None:
        raise UnknownJobError(query.job)
    loop, node = query.loop, query.node
    least = level_number(query.level) if query.level else 0
    runs = store.list_runs(job.id)
    if loop is not None:
        loops = [record.name for record in store.list_loops(job.id)]
        if loop not in loops:
            raise NotInJobError(job.id, "loop", loop, loops)
    if node is not None:
        nodes = sorted(set(_spec_nodes(job.spec)) | {run.node_id for run in runs})
        if node not in nodes:
            raise NotInJobError(job.id, "node", node, nodes)
    records = store.read_logs(job.id, query.after, loop, node, least, limit)
    traces = [
        record
        for record in traceback_records(runs)
        if (loop is None or record.loop == loop) and (node is None or record.node_id == node)
        and record.level >= least
    ]  # fmt: skip
    lines = [LogLine.of(record) for record in records + traces]
    lines.sort(key=lambda line: (line.at, line.id))
    return lines


class LogFollower:
    """A job's new log lines, each once, read after read (``segue logs --follow``).

    Log records come by ``id``: each read asks for those after the largest
    ``id`` handed out. Tracebacks have no ``id`` (0) and every read returns them
    all; the follower hands each (run, attempt)'s out once and keeps those keys
    only - they are few, one per failed attempt.

    Args:
        read: The job's lines after a record ``id`` (``Client.logs`` with ``after``).
    """

    def __init__(self, read: Callable[[int], list[LogLine]]) -> None:
        self._read = read
        self._after = 0
        self._tracebacks: set[tuple[str, int]] = set()

    def read(self) -> list[LogLine]:
        """The lines not handed out before, by time."""
        new: list[LogLine] = []
        for line in self._read(self._after):
            if line.id == 0:
                key = (line.run_id, line.attempt)
                if key in self._tracebacks:
                    continue
                self._tracebacks.add(key)
            self._after = max(self._after, line.id)
            new.append(line)
        return new


def _spec_nodes(spec: Mapping[str, Any]) -> list[str]:
    nodes = spec.get("nodes") or []
    return [str(n["id"]) for n in nodes if isinstance(n, Mapping) and "id" in n]
