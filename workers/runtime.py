"""What a worker process holds: store, artifacts, runner and the results channel.

Built lazily inside the process that runs tasks - after a prefork pool forked
it - so no database connection, socket or CUDA context crosses a fork.
"""

from __future__ import annotations

import logging
import os
import threading

from nodes.errors import SegueError
from nodes.ids import RunId
from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.artifacts import open_artifacts
from orchestrator.channels import Channels
from orchestrator.liveness import process_name
from orchestrator.logs import LOGS_EVENT, keep_logs
from orchestrator.runner import NodeRunner
from orchestrator.settings import Settings
from orchestrator.store import Store, open_store
from orchestrator.streams.hubs import open_stream_hub
from workers.claims import DelayedClaims

log = logging.getLogger("segue.worker")


class WorkerRuntime:
    """The per-process services a node task uses.

    The store and channels not given are opened from ``settings`` (an in-process
    worker shares its coordinator's store and broker).
    """

    def __init__(
        self,
        settings: Settings,
        registry: NodeRegistry,
        name: str,
        *,
        store: Store | None = None,
        channels: Channels | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.store: Store = (
            store if store is not None else open_store(settings.database_url, settings.home)
        )
        self.artifacts = open_artifacts(settings.artifacts_location())
        self.runner = NodeRunner(
            registry,
            self.artifacts,
            cache=self.store,
            threshold=settings.artifact_threshold_bytes,
            on_event=self._node_event,
            worker=name,
            streams=open_stream_hub(settings.broker_url),
        )
        self.channels = channels if channels is not None else Channels(settings.broker_url)
        self.executing: set[str] = set()  # run ids running in this process now
        self.claims = (
            DelayedClaims(self.store, settings.claim_after_s) if settings.claim_after_s else None
        )

    def report(self, run_id: str, kind: str, data: object) -> None:
        """Send a node event of ``run_id`` (progress, preview, gpu facts) to its coordinator."""
        self._node_event(run_id, kind, data)

    def _node_event(self, run_id: str, kind: str, data: object) -> None:
        if kind == LOGS_EVENT:  # a run's log goes to the store, not over the broker
            try:
                keep_logs(self.store, run_id, data)  # type: ignore[arg-type]
            except (SegueError, ValueError) as exc:
                log.warning("could not keep the log of run %s: %s", run_id, exc)
            return
        # Progress and previews reach the coordinator on the results queue.
        event = {"node_event": {"run_id": run_id, "kind": kind, "data": data}}
        self.channels.publish_result(RunId.job_of(run_id), event)

    def close(self) -> None:
        """Release connections."""
        if self.claims is not None:
            self.claims.close()
        self.channels.close()
        self.store.close()


_lock = threading.Lock()
_runtime: WorkerRuntime | None = None
_inherited: list[WorkerRuntime] = []
_pid = 0
_settings: Settings | None = None
_registry: NodeRegistry | None = None


def configure(settings: Settings, registry: NodeRegistry | None = None) -> None:
    """Set what runtimes are built from (called when the worker starts)."""
    global _settings, _registry
    _settings, _registry = settings, registry


def runtime(hostname: str | None = None) -> WorkerRuntime:
    """This process's runtime, built on first use (and again after a fork).

    Its name, in heartbeats and claims, is the process's own
    (:func:`~orchestrator.liveness.process_name`), kind taken from the Celery
    node name (``segue-thread-12@host`` -> ``segue-thread-12-<nonce>@host:<pid>``)."""
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            settings = _settings or Settings()
            node = (hostname or "worker").partition("@")[0] or "worker"
            _runtime = WorkerRuntime(settings, _registry or default_registry(), process_name(node))
            _pid = os.getpid()
        return _runtime


def reset() -> None:
    """Forget this process's runtime (a forked child builds its own).

    The parent's runtime is kept referenced, never closed or collected here:
    its database and broker sockets are the parent's too, and closing them
    from the child would end the parent's sessions."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _inherited.append(_runtime)
        _runtime = None
