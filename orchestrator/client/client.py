"""The Python client: submit jobs, watch them, steer their loops.

``Client.embedded()`` runs the engine in this process over ``$SEGUE_HOME``;
every method works the same whichever backend serves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.artifacts import open_artifacts
from orchestrator.model.workflow import Workflow
from orchestrator.settings import Settings
from orchestrator.states import DesiredLoopState
from orchestrator.views import JobEvent, JobResult, LogLine, LogQuery, LoopInfo, RunInfo


class Backend(Protocol):
    """What serves a client: the embedded engine, or a cluster."""

    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> str: ...
    def wait(self, job_id: str, timeout: float | None = None) -> JobResult: ...
    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]: ...
    def loops(self, job_id: str) -> list[LoopInfo]: ...
    def control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None: ...
    def cancel(self, job_id: str) -> None: ...
    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]: ...
    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]: ...
    def logs(self, query: LogQuery) -> list[LogLine]: ...
    def close(self) -> None: ...


class Job:
    """A submitted job."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def events(self, timeout: float | None = None) -> Iterator[JobEvent]:
        """Live node, loop and job updates; the iterator ends when the job ends."""
        return self.client.events(self.id, timeout)

    def wait(self, timeout: float | None = None) -> JobResult:
        """Block until the job ends and return how it ended."""
        return self.client.wait(self.id, timeout)

    def loops(self) -> list[LoopInfo]:
        """The job's loops."""
        return self.client.loops(self.id)

    def cancel(self) -> None:
        """Cancel the job."""
        self.client.cancel(self.id)

    def runs(self, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded."""
        return self.client.runs(self.id, loop)

    def logs(
        self, loop: str | None = None, node: str | None = None, level: str | None = None
    ) -> list[LogLine]:
        """The job's run logs and tracebacks (see :meth:`Client.logs`)."""
        return self.client.logs(self.id, loop, node, level)

    def __repr__(self) -> str:
        return f"Job({self.id!r})"


class Client:
    """Submit and steer jobs.

    Use :meth:`embedded` for an in-process engine. The client is a context
    manager; closing it cancels the jobs it still runs in embedded mode.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        broker_url: str | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        registry: NodeRegistry | None = None,
    ) -> None:
        """A client of a cluster (the given URLs, else ``SEGUE_*`` settings), or of ``backend``."""
        if backend is None:
            from orchestrator.client.cluster import ClusterBackend

            settings = settings or Settings()
            updates = {
                k: v
                for k, v in (("broker_url", broker_url), ("database_url", database_url))
                if v is not None
            }
            backend = ClusterBackend(settings.model_copy(update=updates), registry)
        self._backend = backend

    @classmethod
    def embedded(
        cls,
        home: str | Path | None = None,
        *,
        database_url: str | None = None,
        registry: NodeRegistry | None = None,
        settings: Settings | None = None,
    ) -> Client:
        """A client over an engine running in this process.

        Args:
            home: Folder for the SQLite store and artifacts (default ``$SEGUE_HOME``
                or ``./.segue``).
            database_url: Another store (``postgresql://…``, ``memory://``).
            registry: Node types jobs may use (default: built-ins and entry points).
            settings: Explicit settings instead of ``SEGUE_*`` variables.
        """
        from orchestrator.engine.child import refuse_in_starting_child
        from orchestrator.engine.engine import Engine
        from orchestrator.store import open_store

        refuse_in_starting_child()
        settings = settings or Settings()
        if home is not None:
            settings = settings.model_copy(update={"home": Path(home)})
        store = open_store(database_url or settings.database_url, settings.home)
        engine = Engine(
            store,
            open_artifacts(settings.artifacts_location()),
            registry or default_registry(),
            threads=settings.threads,
            processes=settings.processes,
            artifacts_root=settings.artifacts_location(),
            threshold=settings.artifact_threshold_bytes,
            gc_threshold=settings.gc_threshold,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            worker_timeout_s=settings.worker_timeout_s,
        )
        return cls(engine)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend (an embedded engine cancels the jobs submitted through it
        that still run; jobs it adopted are handed on)."""
        self._backend.close()

    # jobs -----------------------------------------------------------------------------
    def submit(self, workflow: Workflow | str | Path, inputs: dict[str, Any] | None = None) -> Job:
        """Validate and start a job.

        Raises:
            WorkflowInvalid: the workflow or its inputs are invalid.
        """
        if not isinstance(workflow, Workflow):
            workflow = Workflow.load(workflow)
        return Job(self, self._backend.submit(workflow, inputs))

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        """Block until the job ends (a job driven elsewhere is followed in the store).

        Raises:
            UnknownJobError: no such job.
            JobWaitTimeout: it did not end within ``timeout`` seconds (it goes on).
            DriverFailed: the engine driving it in this process died.
        """
        return self._backend.wait(job_id, timeout)

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        """The job's events from its start, then live, until it ends.

        Raises:
            UnknownJobError: no such job (here, not at the first ``next``).
            JobWaitTimeout: from the iterator, no event came within ``timeout``.
        """
        return self._backend.events(job_id, timeout)

    def cancel(self, job_id: str) -> None:
        """Cancel a job; its loops end ``cancelled`` (whichever process drives it).

        Raises:
            UnknownJobError: no such job.
        """
        self._backend.cancel(job_id)

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        """The job's node runs as recorded (status, attempt, timings, outputs, error and
        traceback of a failed attempt)."""
        return self._backend.runs(job_id, loop)

    def logs(
        self,
        job_id: str,
        loop: str | None = None,
        node: str | None = None,
        level: str | None = None,
        after: int = 0,
    ) -> list[LogLine]:
        """The job's run logs (DESIGN 3.16): each run attempt's log records (its
        context logger, its node's ``logging`` and stdout/stderr, the newest 1000
        per attempt) and the tracebacks of failed runs, by time.

        Args:
            loop: Only this loop's runs (``main`` for the main stage).
            node: Only this node's runs.
            level: Only records at this level or above (``DEBUG`` ... ``CRITICAL``).
            after: Only log records with a larger ``id`` (tracebacks always come):
                the largest ``id`` seen, to follow a job.

        Raises:
            UnknownJobError: no such job.
            NotInJobError: the job has no such loop or node.
            ValueError: ``level`` is not a level name.
        """
        return self._backend.logs(LogQuery(job_id, loop, node, level, after))

    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per node: ``healthy``, ``retrying`` or ``failing``, with run counts."""
        return self._backend.node_health(job_id)

    # loops ----------------------------------------------------------------------------
    def loops(self, job_id: str) -> list[LoopInfo]:
        """The job's loops with status and iteration counts."""
        return self._backend.loops(job_id)

    def pause_loop(self, job_id: str, loop: str) -> None:
        """Let the in-flight iteration finish, then start no new one (idempotent)."""
        self._control(job_id, loop, DesiredLoopState.PAUSED)

    def resume_loop(self, job_id: str, loop: str) -> None:
        """Continue a paused loop with its next item (idempotent)."""
        self._control(job_id, loop, DesiredLoopState.RUNNING)

    def stop_loop(self, job_id: str, loop: str) -> None:
        """Finish the in-flight iteration and end the loop ``stopped``."""
        self._control(job_id, loop, DesiredLoopState.STOPPED)

    def _control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None:
        """Write the request; the job's driver obeys it within a second.

        Raises:
            UnknownJobError: no such job.
            UnknownLoopError: no such loop, or the main stage (the loops are listed).
            LoopEndedError: an ended loop was asked to resume.
        """
        self._backend.control(job_id, loop, desired)
