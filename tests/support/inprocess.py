"""A cluster in one process, without services: the coordinator and its workers on
the memory store and memory channels.

The coordinator is the real service (:class:`~orchestrator.coordinator.Coordinator`)
serving in a thread of its own; its executor hands each run to the worker task
in this process (:class:`~workers.inprocess.InProcessExecutor`); clients are
cluster clients over the same store and broker. Everything between them is what
a real cluster runs, less Celery, PostgreSQL and Redis.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from nodes.library import default_registry
from orchestrator import Client
from orchestrator.channels import Channels
from orchestrator.client.cluster import ClusterBackend
from orchestrator.coordinator import Coordinator
from orchestrator.driver.executor import ResultSink
from orchestrator.queues import MemoryQueueBackend
from orchestrator.runner import NodeRunner
from orchestrator.settings import Settings
from orchestrator.store import MEMORY_URL, MemoryStore
from workers.inprocess import InProcessExecutor
from workers.runtime import WorkerRuntime

STOP_S = 30.0
"""How long the coordinator may take to hand its jobs on and stop."""


class InProcessCluster:
    """A running coordinator and in-process workers; :meth:`close` stops every thread.

    Args:
        home: Folder for artifacts.
    """

    def __init__(self, home: Path) -> None:
        self.settings = Settings(
            home=home,
            database_url=MEMORY_URL,
            broker_url=f"memory://segue-{uuid.uuid4().hex[:12]}",
            artifacts_url=str(home / "artifacts"),
        )
        registry = default_registry()
        self.store = MemoryStore()
        self.runtime = WorkerRuntime(
            self.settings,
            registry,
            "inprocess-worker",
            store=self.store,
            channels=Channels(self.settings.broker_url),
        )
        self.executors: list[InProcessExecutor] = []
        self.coordinator = Coordinator(
            self.settings,
            registry,
            MemoryQueueBackend(),
            store=self.store,
            channels=Channels(self.settings.broker_url),
            executor=self._executor,
        )
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="segue-coordinator")
        self._thread.start()

    def _executor(self, runner: NodeRunner, sink: ResultSink) -> InProcessExecutor:
        executor = InProcessExecutor(self.runtime, runner, sink)
        self.executors.append(executor)
        return executor

    def _serve(self) -> None:
        try:
            self.coordinator.run()
        except BaseException as exc:  # reported by close(), in the test's thread
            self._failure = exc
            raise

    def client(self) -> Client:
        """A cluster client of this cluster (its own channels, the shared store)."""
        backend = ClusterBackend(
            self.settings, store=self.store, channels=Channels(self.settings.broker_url)
        )
        return Client(backend)

    def close(self) -> None:
        """Stop the coordinator, wait for the runs in progress, release the workers.

        Raises:
            RuntimeError: The coordinator did not stop, or it had failed.
        """
        self.coordinator.stop()
        # A wake-up ends the coordinator's wait for messages now, not at its timeout.
        nudge = Channels(self.settings.broker_url)
        nudge.publish_control({"kind": "stop"})
        nudge.close()
        self._thread.join(timeout=STOP_S)
        for executor in self.executors:
            executor.close(wait=True)
        self.runtime.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the coordinator did not stop within {STOP_S}s")
        if self._failure is not None:
            raise RuntimeError("the coordinator failed") from self._failure
