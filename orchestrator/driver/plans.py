"""Plans by workflow digest: each workflow version is validated, planned and stored once."""

from __future__ import annotations

import json
import threading

from nodes.registry import NodeRegistry
from orchestrator.errors import WorkflowParseError
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow
from orchestrator.store.base import JobRecord, Store
from orchestrator.submission import workflow_text

PLAN_CACHE_SIZE = 64


class PlanCache:
    """The plans of the workflows a driver runs, newest ``PLAN_CACHE_SIZE`` kept."""

    def __init__(self, store: Store, registry: NodeRegistry) -> None:
        self.store = store
        self.registry = registry
        self._plans: dict[str, Plan] = {}
        self._lock = threading.Lock()

    def plan(self, workflow: Workflow, now: float) -> tuple[Plan, str]:
        """The workflow's plan and digest; a new version is stored first.

        Raises:
            WorkflowInvalid: the workflow is invalid here (a node type unknown).
        """
        digest, text = workflow_text(workflow)
        with self._lock:
            plan = self._plans.get(digest)
        if plan is None:
            plan = compile_workflow(workflow, self.registry)
            self.store.save_workflow(workflow.name, digest, json.loads(text), now)
            with self._lock:
                if len(self._plans) >= PLAN_CACHE_SIZE:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[digest] = plan
        return plan, digest

    def of_job(self, record: JobRecord, now: float) -> Plan:
        """The plan of a stored job.

        Raises:
            WorkflowError: its workflow is not stored, or not valid here.
        """
        spec = record.spec
        if record.digest is not None:
            stored = self.store.get_workflow(record.digest)
            if stored is None:
                raise WorkflowParseError(f"job {record.id}: workflow {record.digest} is not stored")
            spec = stored.spec
        return self.plan(Workflow.from_dict(spec), now)[0]
