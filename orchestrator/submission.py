"""A submission as the store holds it: the workflow's plan, the job and its loops.

Shared by every client backend and the driver, so a job submitted anywhere is
written the same way. Ids and time are passed in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nodes.registry import NodeRegistry
from orchestrator.errors import Issue, WorkflowInvalid
from orchestrator.model.workflow import Workflow
from orchestrator.planner import Plan, compile_workflow
from orchestrator.states import JobStatus, LoopStatus
from orchestrator.store.base import JobRecord, LoopRecord, Store


@dataclass(frozen=True)
class Submission:
    """A validated, planned workflow with checked inputs, ready to be stored."""

    plan: Plan
    workflow: str
    digest: str
    spec: dict[str, Any]
    inputs: dict[str, Any]


def workflow_digest(workflow: Workflow) -> tuple[str, dict[str, Any]]:
    """The workflow's content digest and its JSON definition."""
    text = workflow.model_dump_json(by_alias=True, exclude_unset=True)
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


def prepare(
    workflow: Workflow, inputs: dict[str, Any] | None, registry: NodeRegistry
) -> Submission:
    """Validate and plan ``workflow`` and check ``inputs`` against it.

    Raises:
        WorkflowInvalid: the workflow or its inputs are invalid.
    """
    plan = compile_workflow(workflow, registry)
    digest, spec = workflow_digest(workflow)
    return Submission(plan, workflow.name, digest, spec, check_inputs(plan, dict(inputs or {})))


def check_inputs(plan: Plan, inputs: dict[str, Any]) -> dict[str, Any]:
    """The job's inputs, checked against the workflow's ``Input`` nodes.

    Raises:
        WorkflowInvalid: naming each missing or unknown input.
    """
    issues = []
    for name in inputs:
        if name not in plan.inputs:
            known = ", ".join(sorted(plan.inputs)) or "none"
            issues.append(Issue(f"unknown input {name!r}; the workflow's inputs are: {known}"))
    for name, spec in plan.inputs.items():
        if name not in inputs and not spec.has_default:
            issues.append(
                Issue(
                    f"missing input {name!r} (it has no default); pass it with -i {name}=VALUE",
                    node=spec.nodes[0],
                )
            )
    if issues:
        raise WorkflowInvalid(issues, name=plan.workflow)
    return inputs


def record_submission(
    store: Store,
    plan: Plan,
    workflow: str,
    digest: str,
    inputs: dict[str, Any],
    job_id: str,
    now: float,
    owner: str | None = None,
    lease_until: float | None = None,
) -> None:
    """Write a new pending job (held by ``owner`` when given) and its pending loops."""
    store.create_job(
        JobRecord(
            id=job_id,
            workflow=workflow,
            status=JobStatus.PENDING.value,
            digest=digest,
            inputs=inputs,
            created_at=now,
            owner=owner,
            lease_until=lease_until,
        )
    )
    store.save_loops(
        [
            LoopRecord(
                job_id=job_id,
                name=loop.name,
                status=LoopStatus.PENDING.value,
                policy=loop.policy.model_dump(mode="json"),
                updated_at=now,
            )
            for loop in plan.all_loops()
        ]
    )
