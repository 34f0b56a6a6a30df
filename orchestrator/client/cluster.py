"""A client backend for a cluster: requests go to the store, a wake-up to the coordinator.

The client never drives a job: it writes the submitted job (pending), desired
loop states and cancels, then wakes the coordinator through ``segue.control``.
Reads come from the store, the source of truth.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from nodes.library import default_registry
from nodes.registry import NodeRegistry
from orchestrator.channels import Channels
from orchestrator.client.types import JobEvent, JobResult, LoopInfo, RunInfo
from orchestrator.engine.jobs import check_inputs
from orchestrator.engine.journal import INPUT_KIND
from orchestrator.model.workflow import Workflow
from orchestrator.planner import compile_workflow
from orchestrator.runtime.states import DesiredLoopState, JobStatus, RunStatus
from orchestrator.settings import Settings
from orchestrator.store import JobRecord, LoopRecord, Store, open_store

POLL_S = 0.05


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

    def submit(self, workflow: Workflow, inputs: dict[str, Any] | None = None) -> str:
        plan = compile_workflow(workflow, self.registry)  # fail here, located, not on a worker
        values = check_inputs(plan, dict(inputs or {}))
        text = workflow.model_dump_json(by_alias=True, exclude_unset=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        now = time.time()
        job_id = uuid.uuid4().hex[:16]
        self.store.save_workflow(workflow.name, digest, json.loads(text), now)
        self.store.create_job(
            JobRecord(
                id=job_id,
                workflow=workflow.name,
                status=JobStatus.PENDING.value,
                digest=digest,
                inputs=values,
                created_at=now,
            )
        )
        self.store.save_loops(
            [
                LoopRecord(
                    job_id=job_id,
                    name=loop.name,
                    status="pending",
                    policy=loop.policy.model_dump(mode="json"),
                    updated_at=now,
                )
                for loop in plan.all_loops()
            ]
        )
        self.channels.publish_control({"kind": "submit", "job": job_id})
        return job_id

    def _job(self, job_id: str) -> JobRecord:
        record = self.store.get_job(job_id)
        if record is None:
            raise KeyError(f"no job {job_id!r} in the store")
        return record

    def wait(self, job_id: str, timeout: float | None = None) -> JobResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self._job(job_id)
            if JobStatus(record.status).terminal:
                return JobResult(
                    job=job_id,
                    status=record.status,
                    outputs=record.outputs,
                    error=record.error,
                    loops={info.name: info for info in self.loops(job_id)},
                )
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout}s")
            time.sleep(POLL_S)

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[JobEvent]:
        self._job(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        after = 0
        while True:
            batch = self.store.read_events(job_id, after=after, limit=1000)
            for record in batch:
                after = record.seq
                if record.kind == INPUT_KIND:
                    continue  # the coordinator's journal, not an event for people
                event = JobEvent(
                    job=job_id,
                    kind=record.kind,
                    at=record.at,
                    seq=record.seq,
                    loop=record.loop,
                    iteration=record.iteration,
                    node=record.node,
                    run_id=record.run_id,
                    status=record.status,
                    data=record.data,
                )
                yield event
                if event.final:
                    return
            if not batch:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"no event from job {job_id} within {timeout}s")
                time.sleep(POLL_S)

    def loops(self, job_id: str) -> list[LoopInfo]:
        records = self.store.list_loops(job_id)
        if not records:
            self._job(job_id)
        return [LoopInfo.of(r) for r in records]

    def runs(self, job_id: str, loop: str | None = None) -> list[RunInfo]:
        self._job(job_id)
        return [RunInfo.of(r) for r in self.store.list_runs(job_id, loop)]

    def control(self, job_id: str, loop: str, desired: DesiredLoopState) -> None:
        self._job(job_id)
        names = [r.name for r in self.store.list_loops(job_id)]
        if loop == "main" or loop not in names:
            known = ", ".join(n for n in names if n != "main") or "none"
            raise KeyError(f"job {job_id} has no loop {loop!r} that can be steered; loops: {known}")
        self.store.request_loop(job_id, loop, desired.value)
        self.channels.publish_control({"kind": "loop", "job": job_id, "loop": loop})

    def cancel(self, job_id: str) -> None:
        if not self.store.request_cancel(job_id):
            raise KeyError(f"no job {job_id!r} in the store")
        self.channels.publish_control({"kind": "cancel", "job": job_id})

    def node_health(self, job_id: str) -> dict[str, dict[str, Any]]:
        report: dict[str, dict[str, Any]] = {}
        for run in self.runs(job_id):
            node = run.node.split(".")[0]
            entry = report.setdefault(
                node, {"health": "healthy", "succeeded": 0, "failed": 0, "retrying": 0}
            )
            if run.status in (RunStatus.SUCCEEDED.value, RunStatus.CACHED.value):
                entry["succeeded"] += 1
            elif run.status == RunStatus.FAILED.value:
                entry["failed"] += 1
            elif run.status == RunStatus.RETRYING.value:
                entry["retrying"] += 1
        for entry in report.values():
            total = entry["succeeded"] + entry["failed"]
            rate = entry["failed"] / total if total else 0.0
            entry["error_rate"] = round(rate, 3)
            if entry.pop("retrying"):
                entry["health"] = "retrying"
            elif rate > 0.5:
                entry["health"] = "failing"
        return report

    def close(self) -> None:
        self.channels.close()
        self.store.close()
