"""The state store's tables, as SQLAlchemy 2 declarative models.

The schema itself is created by the Alembic migrations in
``orchestrator/store/migrations/versions``; these models must match them (a
test compares the two). Times are seconds since the epoch (floats), JSON
columns hold SQL ``NULL`` for ``None``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Json = JSON(none_as_null=True)
"""JSON column type; ``None`` is stored as SQL ``NULL``, not the JSON ``null``."""

ACTIVE_RUNS = "status IN ('queued', 'running')"
"""The runs a worker pool has to serve: the predicate of ``ix_node_runs_active_queue``."""

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a BIGINT.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class WorkflowRow(Base):
    """A workflow definition, stored once per content digest."""

    __tablename__ = "workflows"

    digest: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[float] = mapped_column(Float)


class JobRow(Base):
    """A job: a run of a workflow with inputs."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    inputs: Mapped[dict[str, Any]] = mapped_column(Json)
    outputs: Mapped[dict[str, Any]] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[float | None] = mapped_column(Float)


class LoopRow(Base):
    """A loop of a job; ``id`` records creation order."""

    __tablename__ = "loops"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_loops_job_id_name"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    desired: Mapped[str] = mapped_column(String(32))
    iterations: Mapped[int] = mapped_column(Integer)
    failed_iterations: Mapped[int] = mapped_column(Integer)
    cursor: Mapped[Any] = mapped_column(Json, nullable=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[float] = mapped_column(Float)


class NodeRunRow(Base):
    """One node run, ``{job}:{loop}:{iteration}:{node}``, as last recorded."""

    __tablename__ = "node_runs"
    __table_args__ = (
        # Serves every lookup by job; PostgreSQL keeps room for in-place updates.
        Index("ix_node_runs_job_id_loop_iteration", "job_id", "loop", "iteration"),
        # Only the active runs, by queue: what autoscalers count (KEDA, in the Helm chart).
        Index(
            "ix_node_runs_active_queue",
            "queue",
            postgresql_where=text(ACTIVE_RUNS),
            sqlite_where=text(ACTIVE_RUNS),
        ),
        {"postgresql_with": {"fillfactor": 70}},
    )

    run_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(255))
    loop: Mapped[str] = mapped_column(String(255))
    iteration: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(255))
    type_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    queued_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)


class EventRow(Base):
    """One entry of a job's append-only event log; ``seq`` orders the log."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_job_id_seq", "job_id", "seq"),
        # AUTOINCREMENT: SQLite never hands out a seq twice, even after deletes.
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    loop: Mapped[str | None] = mapped_column(String(255))
    iteration: Mapped[int | None] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(Json)


class RunLogRow(Base):
    """One log record of a run attempt; ``id`` orders a job's log."""

    __tablename__ = "run_logs"
    __table_args__ = (
        Index("ix_run_logs_job_id_id", "job_id", "id"),
        Index("ix_run_logs_run_id_attempt", "run_id", "attempt"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(1024))
    loop: Mapped[str] = mapped_column(String(255))
    iteration: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    level: Mapped[int] = mapped_column(Integer)
    logger: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)


class CacheEntryRow(Base):
    """Stored outputs of a cacheable node run, by cache key."""

    __tablename__ = "cache_entries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    type_name: Mapped[str] = mapped_column(String(255))
    outputs: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[float] = mapped_column(Float)


class ProcessRow(Base):
    """A process's latest heartbeat: a worker, a coordinator or an embedded engine."""

    __tablename__ = "processes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    beat_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    idle_since: Mapped[float | None] = mapped_column(Float)
    holds: Mapped[list[str]] = mapped_column(Json)
    queues: Mapped[list[str]] = mapped_column(Json)
    info: Mapped[dict[str, Any]] = mapped_column(Json)


# The tables, for Core statements (the store writes in bulk, not through the ORM).
WORKFLOWS: Table = WorkflowRow.__table__  # type: ignore[assignment]
JOBS: Table = JobRow.__table__  # type: ignore[assignment]
LOOPS: Table = LoopRow.__table__  # type: ignore[assignment]
RUNS: Table = NodeRunRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
CACHE: Table = CacheEntryRow.__table__  # type: ignore[assignment]
PROCESSES: Table = ProcessRow.__table__  # type: ignore[assignment]
RUN_LOGS: Table = RunLogRow.__table__  # type: ignore[assignment]
