"""A client backend for a cluster: requests go to the store, a wake-up to the coordinator.

The client never drives a job: it writes the submitted job (pending), desired
loop states and cancels, then wakes the coordinator through ``segue.control``.
Reads come from the store, the source of truth.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator import health
from orchestrator.channels import Channels
from orchestrator.driver import embedded_owner
from orchestrator.driver.plans import PlanCache
from orchestrator.gpufacts import gpu_waits, live_gpus
from orchestrator.model.workflow import Workflow
from orchestrator.reads import StoreReader
from orchestrator.requests import request_cancel, request_loop
from orchestrator.settings import Settings
from orchestrator.states import DesiredLoopState, JobStatus
from orchestrator.store import Store, open_store
from orchestrator.submission import prepare, record_submission
from orchestrator.views import JobEvent, JobResult, LogLine, LogQuery, LoopInfo, RunInfo

_NO_RUNS: dict[str, Any] = {"health": "healthy", "succeeded": 0, "failed": 0, "error_rate": 0.0}


class ClusterBackend:
    """Submits to and reads from a cluster through the store and the broker.

    The store and channels not given are opened from ``settings``.
    """

    def __init__(
        self,
        settings: Settings,
        registry: NodeRegistry | None = None,
        *,
        store: Store | None = None,
        channels: Channels | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        self.store: Store = (
            store if store is not None else open_store(settings.database_url, settings.home)
        )
        self.channels = channels if channels is not None else Channels(settings.broker_url)
        self.reader = StoreReader(self.store)

    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> str:
        # Validated and planned here, so a bad workflow fails located, not on a worker.
        sub = prepare(workflow, inputs, self.registry)
        now = time.time()
        job_id = uuid.uuid4().hex[:16]
        self.store.save_workflow(sub.workflow, sub.digest, sub.spec, now)
        record_submission(self.store, sub.plan, sub.workflow, sub.digest, sub.inputs, job_id, now)
        self.channels.publish_control({"kind": "submit", "job": job_id})
        return job_id

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        return self.reader.wait(job_id, timeout)

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        return self.reader.events(job_id, timeout)

    def loops(self, job_id: str) -> list[LoopInfo]:
        return self.reader.loops(job_id)

    def logs(self, query: LogQuery) -> list[LogLine]:
        """The job's run logs and tracebacks, as the store holds them."""
        return self.reader.logs(query)

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        return self.reader.runs(job_id, loop)

    def control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None:
        request_loop(self.store, job_id, loop, desired)
        self._wake(job_id, {"kind": "loop", "job": job_id, "loop": loop})

    def cancel(self, job_id: str) -> None:
        request_cancel(self.store, job_id)
        self._wake(job_id, {"kind": "cancel", "job": job_id})

    def _wake(self, job_id: str, body: dict[str, Any]) -> None:
        """Wake the coordinators so they read a request at once (they also read the
        store every second). A job an embedded engine drives needs no wake-up: its
        steward reads the store, and the broker may not even exist."""
        record = self.store.get_job(job_id)
        if record is not None and embedded_owner(record.owner):
            return
        self.channels.publish_control(body)

    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        """Per node health of a job, from its recorded runs (:func:`node_health`);
        while the job runs, a GPU node no live GPU worker can fit says why (``waits``)."""
        report = health.node_health(self.runs(job_id))
        record = self.store.get_job(job_id)
        if record is None or JobStatus(record.status).terminal:
            return report
        now = time.time()
        plan = PlanCache(self.store, self.registry).of_job(record, now)
        vram = {n: node.route.vram_mb for n, node in plan.nodes.items() if node.route.gpu}
        if not any(vram.values()):
            return report
        gpus = live_gpus(self.store.list_processes(), now, self.settings.worker_timeout_s)
        for node, reason in gpu_waits(vram, gpus).items():
            entry = report.setdefault(node, dict(_NO_RUNS))
            entry["waits"] = reason
        return report

    def close(self) -> None:
        self.channels.close()
        self.store.close()
