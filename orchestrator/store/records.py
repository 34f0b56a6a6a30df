"""The records a store keeps: workflows, jobs, loops, node runs, events, run
logs, processes, and the tallies metrics read (see :mod:`orchestrator.store.base`
for the store that keeps them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue


@dataclass(frozen=True)
class WorkflowRecord:
    """One workflow definition, stored once per content digest."""

    name: str
    digest: str
    spec: dict[str, Any]
    created_at: float = 0.0


@dataclass(frozen=True)
class JobRecord:
    """One job: a run of a workflow with inputs.

    ``digest`` names the workflow definition saved with :meth:`Store.save_workflow`;
    ``spec`` holds the definition itself only for a job stored without one.
    """

    id: str
    workflow: str
    status: str
    spec: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None
    inputs: dict[str, JsonValue] = field(default_factory=dict)
    outputs: dict[str, JsonValue] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    owner: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True)
class LoopRecord:
    """One loop of a job (the main stage is the loop ``main``)."""

    job_id: str
    name: str
    status: str
    desired: str = "running"
    iterations: int = 0
    failed_iterations: int = 0
    cursor: JsonValue = None
    policy: dict[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0


@dataclass(frozen=True)
class RunRecord:
    """One node run: ``{job}:{loop}:{iteration}:{node}``, as last recorded.

    ``error`` (``Type: message``) and ``traceback`` are those of its latest
    failed attempt, while it is ``retrying`` or once it ``failed``.
    """

    run_id: str
    job_id: str
    loop: str
    iteration: int
    node_id: str
    type_name: str
    status: str
    attempt: int = 1
    queue: str | None = None
    worker: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outputs: dict[str, JsonValue] | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """One entry of a job's append-only event log.

    ``seq`` is assigned by the store (increasing per store); leave it 0 when
    appending.
    """

    job_id: str
    kind: str
    at: float
    loop: str | None = None
    iteration: int | None = None
    node: str | None = None
    run_id: str | None = None
    status: str | None = None
    data: dict[str, JsonValue] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class LogRecord:
    """One log record of a run attempt (DESIGN section 3.16).

    ``level`` is a ``logging`` level number; ``logger`` the logger's name, or
    ``stdout``/``stderr`` for a printed line. ``id`` is assigned by the store
    (increasing per store; leave it 0 when saving).
    """

    run_id: str
    job_id: str
    loop: str
    iteration: int
    node_id: str
    attempt: int
    at: float
    level: int
    logger: str
    message: str
    id: int = 0


@dataclass(frozen=True)
class ProcessRecord:
    """What a process announces with each heartbeat (DESIGN section 3, item 12).

    Attributes:
        name: Unique per process start: ``kind-nonce@host:pid``.
        kind: ``worker`` (a Celery worker process or prefork child),
            ``coordinator`` or ``engine`` (an embedded engine).
        holds: A worker's runs received and not yet reported (run ids); a
            driver's jobs (job ids).
        queues: The queues a worker consumes (empty for a prefork child).
        idle_since: When a worker last began to hold nothing; ``None`` while it
            holds runs.
        state: ``alive``, or ``stopped`` once it shut down cleanly.
        beat_at: Its latest heartbeat.
    """

    name: str
    kind: str
    host: str
    pid: int
    started_at: float
    beat_at: float
    holds: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    idle_since: float | None = None
    state: str = "alive"
    info: dict[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopTally:
    """The loops of one workflow's loop in one status, summed over every job."""

    workflow: str
    loop: str
    status: str
    loops: int
    iterations: int
    failed_iterations: int


@dataclass(frozen=True)
class RunTally:
    """The finished runs of one workflow's node type with one final status.

    Attributes:
        runs: How many runs ended with ``status``.
        timed: Those of them with a start and an end recorded.
        seconds: The timed runs' total duration (end minus start).
        buckets: For each bound asked for, how many timed runs lasted at most
            that many seconds (cumulative, like a Prometheus histogram).
    """

    workflow: str
    type_name: str
    status: str
    runs: int
    timed: int = 0
    seconds: float = 0.0
    buckets: tuple[int, ...] = ()


@dataclass(frozen=True)
class Tallies:
    """Totals over the whole store, for metrics (:meth:`Store.tallies`).

    Attributes:
        jobs: How many jobs are in each status (a status with none is absent).
        loops: Loops by workflow, loop name and status, sorted by those.
        runs: Finished runs by workflow, node type and status, sorted by those.
    """

    jobs: dict[str, int]
    loops: tuple[LoopTally, ...]
    runs: tuple[RunTally, ...]
