"""Compile a validated workflow into an immutable :class:`Plan`.

Pure and deterministic: the same workflow always gives the same plan, in the
workflow's declaration order wherever an order is free.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from nodes.registry import NodeRegistry
from orchestrator.model.spec import LoopPolicy, RetryPolicy
from orchestrator.model.workflow import Workflow
from orchestrator.planner.plan import (
    InputBinding,
    InputPlan,
    LoopPlan,
    OutputPlan,
    Plan,
    PlannedNode,
    QueueEndpoint,
    QueuePlan,
    Route,
)
from orchestrator.validation.checker import MAIN, Limits, ResolvedNode
from orchestrator.validation.validator import ValidatedWorkflow, check

_DEFAULT_RETRY = RetryPolicy()
_MAIN_POLICY = LoopPolicy()


def compile_workflow(
    workflow: Workflow, registry: NodeRegistry, limits: Limits | None = None
) -> Plan:
    """Validate and plan ``workflow``.

    Raises:
        WorkflowInvalid: with every fault found.
    """
    return build_plan(check(workflow, registry, limits), registry, limits)


def build_plan(
    validated: ValidatedWorkflow, registry: NodeRegistry, limits: Limits | None = None
) -> Plan:
    """The plan of a workflow that passed validation."""
    workflow = validated.workflow
    policies = {name: workflow.loops.get(name, _MAIN_POLICY) for name in _loop_names(validated)}
    consumers: dict[str, list[str]] = validated.graph.successors
    nodes = {
        node_id: _planned(validated, validated.nodes[node_id], policies, consumers)
        for node_id in validated.order
    }
    loops = {name: _loop(name, policies[name], nodes, validated) for name in policies}
    main = loops.pop(MAIN)
    subplans = {
        node.id: compile_workflow(
            Workflow.model_validate(getattr(node.config, node.node_type.subworkflow_field)),
            registry,
            limits,
        )
        for node in validated.nodes.values()
        if node.node_type.subworkflow_field
    }
    return Plan(
        workflow=workflow.name,
        nodes=MappingProxyType(nodes),
        main=main,
        loops=MappingProxyType(loops),
        queues=MappingProxyType(_queues(validated)),
        inputs=MappingProxyType(_inputs(validated)),
        outputs=MappingProxyType(_outputs(validated)),
        subplans=MappingProxyType(subplans),
    )


def _loop_names(validated: ValidatedWorkflow) -> list[str]:
    producers = [n for n in validated.order if validated.nodes[n].is_producer]
    return [MAIN, *sorted(producers, key=lambda n: validated.nodes[n].index)]


def _planned(
    validated: ValidatedWorkflow,
    node: ResolvedNode,
    policies: dict[str, LoopPolicy],
    consumers: dict[str, list[str]],
) -> PlannedNode:
    spec, node_type = node.spec, node.node_type
    loop = validated.loop_of[node.id]
    pool = policies[loop].pool
    gpu = node_type.resources.gpu
    queue = spec.queue or ("gpu" if gpu else pool)
    feeds = validated.graph.feeds.get(node.id, {})
    inputs = tuple(
        InputBinding(
            port=port,
            source=edge.source_node,
            source_port=edge.source_port,
            feedback=edge.feedback,
            initial=edge.initial,
            has_initial=edge.has_initial,
        )
        for port, (_, edge) in sorted(feeds.items(), key=lambda item: item[1][0])
    )
    return PlannedNode(
        id=node.id,
        type_name=spec.type,
        type_version=node_type.version,
        kind=node_type.kind,
        config=MappingProxyType(node.config.model_dump(mode="json")),
        loop=loop,
        blocking=node.blocking,
        detached=node.id in validated.detached,
        inputs=inputs,
        consumers=tuple(dict.fromkeys(consumers.get(node.id, ()))),
        route=Route(pool=pool, queue=queue, gpu=gpu),
        retry=spec.retry or _DEFAULT_RETRY,
        timeout_s=spec.timeout_s,
        cache=spec.cache if spec.cache is not None else node_type.cacheable,
        position=node.index,
    )


def _loop(
    name: str, policy: LoopPolicy, nodes: dict[str, PlannedNode], validated: ValidatedWorkflow
) -> LoopPlan:
    members = tuple(n for n in validated.order if validated.loop_of[n] == name)
    if name != MAIN:  # the producer first, then dataflow order
        members = (name, *(n for n in members if n != name))
    return LoopPlan(
        name=name,
        producer=None if name == MAIN else name,
        policy=policy,
        nodes=members,
        blocking=tuple(n for n in members if not nodes[n].detached),
        detached=tuple(n for n in members if nodes[n].detached),
        feedback=tuple((n, b) for n in members for b in nodes[n].inputs if b.feedback),
        outputs=tuple(n for n in members if nodes[n].type_name == "Output"),
    )


def _config(node: ResolvedNode, name: str, default: Any = None) -> Any:
    return getattr(node.config, name, default)


def _queues(validated: ValidatedWorkflow) -> dict[str, QueuePlan]:
    found: dict[tuple[str, str], tuple[list[QueueEndpoint], list[QueueEndpoint]]] = {}
    for node_id in sorted(validated.order, key=lambda n: validated.nodes[n].index):
        node = validated.nodes[node_id]
        if node.spec.type not in ("QueueWriter", "QueueReader"):
            continue
        key = (_config(node, "queue"), _config(node, "scope", "job"))
        writers, readers = found.setdefault(key, ([], []))
        endpoint = QueueEndpoint(
            loop=validated.loop_of[node_id], node=node_id, group=_config(node, "group")
        )
        (writers if node.spec.type == "QueueWriter" else readers).append(endpoint)
    return {
        name: QueuePlan(name=name, scope=scope, writers=tuple(w), readers=tuple(r))
        for (name, scope), (w, r) in found.items()
    }


def _inputs(validated: ValidatedWorkflow) -> dict[str, InputPlan]:
    plans: dict[str, InputPlan] = {}
    for node in sorted(validated.nodes.values(), key=lambda n: n.index):
        if node.spec.type != "Input":
            continue
        name = _config(node, "name", node.id)
        has_default = "default" in node.config.model_fields_set
        known = plans.get(name)
        plans[name] = InputPlan(
            name=name,
            nodes=(*(known.nodes if known else ()), node.id),
            has_default=has_default or (known is not None and known.has_default),
            default=_config(node, "default") if has_default else (known.default if known else None),
        )
    return plans


def _outputs(validated: ValidatedWorkflow) -> dict[str, OutputPlan]:
    return {
        _config(node, "name", node.id): OutputPlan(
            name=_config(node, "name", node.id),
            node=node.id,
            loop=validated.loop_of[node.id],
            collect=_config(node, "collect", "list"),
        )
        for node in sorted(validated.nodes.values(), key=lambda n: n.index)
        if node.spec.type == "Output"
    }
