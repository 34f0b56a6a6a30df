"""Connection and runtime settings, read once from ``SEGUE_*`` variables or given."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.liveness import HEARTBEAT_INTERVAL_S, WORKER_TIMEOUT_S


class Settings(BaseSettings):
    """Segue's settings; each field reads ``SEGUE_<NAME>`` from the environment.

    Attributes:
        home: Folder for the SQLite store and local artifacts (``SEGUE_HOME``).
        database_url: SQLAlchemy URL of the state store; ``None`` = SQLite in ``home``.
        broker_url: Celery broker (Redis or RabbitMQ) for distributed mode.
        artifacts_url: Folder or fsspec URL for artifacts; ``None`` = ``home/artifacts``.
        artifact_threshold_bytes: Outputs with larger JSON become artifacts.
        threads: Size of the embedded thread pool (``None``: 4 per CPU, at most 32).
        processes: Size of the embedded process pool (``None``: one per CPU).
        visibility_timeout_s: Redis transport: an unacknowledged task is
            redelivered after this long. Only a backstop: a dead worker's runs
            come back after ``worker_timeout_s`` (liveness), and a live
            worker's run is never taken from it, however long.
        unacked_restore_limit: Redis transport: unacknowledged tasks restored per sweep.
        worker_prefetch: Tasks a worker process reserves ahead (GPU workers: 1).
        heartbeat_path: File a worker or coordinator touches for liveness probes.
        heartbeat_interval_s: How often every worker, coordinator and embedded
            engine announces itself, with the runs or jobs it holds (and
            touches ``heartbeat_path``).
        worker_timeout_s: A process silent this long is dead: the runs it held
            are sent again at once, the jobs it drove are taken over.
        coordinator_lease_s: How long a coordinator's hold on a job lasts
            unless renewed; another coordinator takes over after it expires.
        coordinator_name: This coordinator's name (default: host and pid).
        claim_after_s: A worker records a run as ``running`` once it has run
            this long (0: before it starts). A run done sooner is recorded
            once, when it ends; a delivery that may have run before is
            always claimed first, so a finished run is skipped.
        metrics_port: The port of the coordinator's Prometheus ``/metrics``
            (0: not served); ``segue coordinator --metrics-port`` overrides it.
        metrics_host: The address ``/metrics`` listens on.
        ui_token: The operations page's token (``SEGUE_UI_TOKEN``): every control
            action needs it in a header, and every read too when ``segue ui`` is
            bound to a non-loopback address (it refuses to start there without
            one). Unset on loopback: ``segue ui`` makes one up and prints it.
        gc_threshold: While an embedded engine runs, the garbage collector's
            first threshold is raised to at least this (0 leaves it alone):
            a job's state is many small objects, and Python's default of 700
            makes the collector rescan them thousands of times per job.
    """

    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="ignore")

    home: Path = Path(".segue")
    database_url: str | None = None
    broker_url: str = "redis://127.0.0.1:6379/0"
    artifacts_url: str | None = None
    artifact_threshold_bytes: int = Field(256 * 1024, ge=1024)
    threads: int | None = Field(None, ge=1)
    processes: int | None = Field(None, ge=1)
    gc_threshold: int = Field(50_000, ge=0)
    visibility_timeout_s: float = Field(3600.0, gt=0)
    unacked_restore_limit: int = Field(1000, ge=1)
    worker_prefetch: int = Field(1, ge=1)
    heartbeat_path: Path | None = None
    heartbeat_interval_s: float = Field(HEARTBEAT_INTERVAL_S, gt=0)
    worker_timeout_s: float = Field(WORKER_TIMEOUT_S, gt=0)
    coordinator_lease_s: float = Field(30.0, gt=0)
    coordinator_name: str | None = None
    claim_after_s: float = Field(0.25, ge=0)
    metrics_port: int = Field(9464, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    ui_token: str | None = None

    def artifacts_location(self) -> str:
        """The artifacts folder or URL in effect."""
        return self.artifacts_url or str(self.home / "artifacts")
