"""Compile a validated workflow into an immutable :class:`Plan`.

Pure and deterministic: the same workflow always gives the same plan, in the
workflow's declaration order wherever an order is free.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from nodes.base import Role
from nodes.context import MAIN
from nodes.registry import NodeRegistry
from orchestrator.graph import gc_paused
from orchestrator.model.spec import LoopPolicy, Pool, RetryPolicy
from orchestrator.model.workflow import Workflow
from orchestrator.planner.gpustreams import accumulate_gpu_streams
from orchestrator.planner.plan import (
    InputBinding,
    InputPlan,
    InputTarget,
    LoopPlan,
    OutputPlan,
    Plan,
    PlannedNode,
    QueueEndpoint,
    QueuePlan,
    Route,
)
from orchestrator.validation.checker import Feed, Graph, Limits, ResolvedNode
from orchestrator.validation.validator import ValidatedWorkflow, check

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_POLICY = LoopPolicy()


def compile_workflow(
    workflow: Workflow, registry: NodeRegistry, limits: Limits | None = None
) -> Plan:
    """Validate and plan ``workflow``.

    Raises:
        WorkflowInvalid: with every fault found.
    """
    with gc_paused():
        return _build(check(workflow, registry, limits), registry, limits)


def build_plan(
    validated: ValidatedWorkflow, registry: NodeRegistry, limits: Limits | None = None
) -> Plan:
    """The plan of a workflow that passed validation."""
    with gc_paused():
        return _build(validated, registry, limits)


def _build(validated: ValidatedWorkflow, registry: NodeRegistry, limits: Limits | None) -> Plan:
    workflow = validated.workflow
    graph = validated.graph
    names = [validated.loop_name(at) for at in range(len(graph.nodes))]
    special = [graph.nodes[at] for at in graph.special]  # producers, inputs, outputs, …
    policies = {MAIN: _DEFAULT_POLICY}
    for node in special:
        if node.is_producer:
            policies[node.id] = workflow.loops.get(node.id, _DEFAULT_POLICY)
    members: dict[str, list[str]] = {name: [] for name in policies}
    nodes: dict[str, PlannedNode] = {}
    comments = {n.id: _config(n, "text", "") for n in special if n.node_type.role is Role.COMMENT}
    for at in validated.order:
        node = graph.nodes[at]
        if node.id in comments:
            continue  # a note: in no loop, never run
        loop = names[at]
        nodes[node.id] = _planned(validated, at, loop, policies[loop].pool)
        if loop != node.id:  # a producer is put first below
            members[loop].append(node.id)
    notes = accumulate_gpu_streams(nodes)
    _link_streams(nodes)
    loops = {
        name: _loop(name, policies[name], ids if name == MAIN else [name, *ids], nodes)
        for name, ids in members.items()
    }
    main = loops.pop(MAIN)
    return Plan(
        workflow=workflow.name,
        nodes=MappingProxyType(nodes),
        main=main,
        loops=MappingProxyType(loops),
        queues=MappingProxyType(_queues(special, names, graph.index)),
        inputs=MappingProxyType(_inputs(special, graph)),
        outputs=MappingProxyType(_outputs(special, names, graph.index)),
        subplans=MappingProxyType(_subplans(special, registry, limits)),
        comments=MappingProxyType(comments),
        notes=MappingProxyType(notes),
    )


def _planned(validated: ValidatedWorkflow, at: int, loop: str, pool: Pool) -> PlannedNode:
    graph = validated.graph
    node = graph.nodes[at]
    spec, node_type = node.spec, node.node_type
    gpu = node_type.resources.gpu
    vram_mb = max(node_type.resources.vram_mb, spec.resources.vram_mb if spec.resources else 0)
    nodes = graph.nodes
    feeds = graph.feeds[at]  # filled in file order, so bindings keep the edges' order
    inputs = tuple([_binding(port, feed, nodes) for port, feed in feeds.items()]) if feeds else ()
    if inputs and any(p.stream for p in node.inputs.values()):
        inputs = _live(inputs, node, feeds, validated, loop)
    successors = graph.successors[at]
    consumers = tuple(dict.fromkeys([nodes[s].id for s in successors])) if successors else ()
    queue = spec.queue or ("gpu" if gpu else pool)
    return PlannedNode(
        node.id,
        spec.type,
        node_type.version,
        node_type.kind,
        node_type.role,
        MappingProxyType(spec.config),
        node.config,
        loop,
        node.blocking,
        validated.detached[at],
        inputs,
        consumers,
        _ROUTES.get((pool, queue, gpu, vram_mb)) or _route(pool, queue, gpu, vram_mb),
        spec.retry or _DEFAULT_RETRY,
        spec.timeout_s,
        spec.cache if spec.cache is not None else node_type.cacheable,
        node.position,
        upstream=tuple(dict.fromkeys(b.source for b in inputs if not b.feedback)),
        live=any(b.stream for b in inputs),
        inline=node_type.runs_inline(node.config),
    )


_ROUTES: dict[tuple[str, str, int, int], Route] = {}


def _route(pool: Pool, queue: str, gpu: int, vram_mb: int) -> Route:
    route = _ROUTES[(pool, queue, gpu, vram_mb)] = Route(pool, queue, gpu, vram_mb)
    return route


def _binding(port: str, feed: Feed, nodes: list[ResolvedNode]) -> InputBinding:
    source = nodes[feed.source].id
    if not feed.feedback:
        return InputBinding(port, source, feed.source_port)
    edge = feed.edge
    return InputBinding(port, source, feed.source_port, True, edge.initial, edge.has_initial)


def _live(
    inputs: tuple[InputBinding, ...],
    node: ResolvedNode,
    feeds: dict[str, Feed],
    validated: ValidatedWorkflow,
    loop: str,
) -> tuple[InputBinding, ...]:
    """Mark the bindings that read a stream live: a ``Stream`` input fed (not by
    feedback) from a ``Stream`` output in the same loop, by a source that feeds
    the node through live bindings only (else the node waits for its end)."""
    nodes = validated.graph.nodes
    live: dict[str, bool] = {}
    for binding in inputs:
        feed = feeds[binding.port]
        source = nodes[feed.source]
        port = source.outputs.get(binding.source_port)
        ok = (
            not binding.feedback
            and node.inputs[binding.port].stream
            and port is not None
            and port.stream
            and source.node_type.role is Role.COMPUTE
            and not source.is_producer
            and validated.loop_name(feed.source) == loop
        )
        live[binding.source] = live.get(binding.source, True) and ok
    return tuple(b._replace(stream=True) if live[b.source] else b for b in inputs)


def _link_streams(nodes: dict[str, PlannedNode]) -> None:
    """Give each node the live outlets its stream outputs feed, as (port, consumer)."""
    outlets: dict[str, list[tuple[str, str]]] = {}
    for node in nodes.values():
        for binding in node.inputs:
            if binding.stream:
                outlets.setdefault(binding.source, []).append((binding.source_port, node.id))
    for source, links in outlets.items():
        nodes[source] = nodes[source]._replace(streams=tuple(links))


def _loop(
    name: str, policy: LoopPolicy, members: list[str], nodes: dict[str, PlannedNode]
) -> LoopPlan:
    planned = [nodes[n] for n in members]
    return LoopPlan(
        name=name,
        producer=None if name == MAIN else name,
        policy=policy,
        nodes=tuple(members),
        blocking=tuple(n.id for n in planned if not n.detached),
        detached=tuple(n.id for n in planned if n.detached),
        feedback=tuple((n.id, b) for n in planned for b in n.inputs if b.feedback),
        outputs=tuple(n.id for n in planned if n.role is Role.OUTPUT),
    )


def _config(node: ResolvedNode, name: str, default: Any = None) -> Any:
    return getattr(node.config, name, default)


def _subplans(
    nodes: list[ResolvedNode], registry: NodeRegistry, limits: Limits | None
) -> dict[str, Plan]:
    plans = {}
    for node in nodes:
        field = node.node_type.subworkflow_field
        if field:
            sub = Workflow.model_validate(_config(node, field))
            plans[node.id] = compile_workflow(sub, registry, limits)
    return plans


def _queues(
    nodes: list[ResolvedNode], names: list[str], index: dict[str, int]
) -> dict[str, QueuePlan]:
    found: dict[tuple[str, str], tuple[list[QueueEndpoint], list[QueueEndpoint]]] = {}
    for node in nodes:
        if not node.node_type.role.queue:
            continue
        at = index[node.id]
        key = (_config(node, "queue"), _config(node, "scope", "job"))
        writers, readers = found.setdefault(key, ([], []))
        endpoint = QueueEndpoint(loop=names[at], node=node.id, group=_config(node, "group"))
        (writers if node.node_type.role is Role.QUEUE_WRITER else readers).append(endpoint)
    return {
        name: QueuePlan(name=name, scope=scope, writers=tuple(w), readers=tuple(r))  # type: ignore[arg-type]
        for (name, scope), (w, r) in found.items()
    }


def _inputs(nodes: list[ResolvedNode], graph: Graph) -> dict[str, InputPlan]:
    plans: dict[str, InputPlan] = {}
    for node in nodes:
        if node.node_type.role is not Role.INPUT:
            continue
        name = _config(node, "name", node.id)
        has_default = "default" in node.config.model_fields_set
        targets = _targets(graph, graph.index[node.id])
        known = plans.get(name)
        if known is not None and (known.has_default or not has_default):
            plans[name] = InputPlan(
                name,
                (*known.nodes, node.id),
                known.has_default,
                known.default,
                (*known.targets, *targets),
            )
        else:
            default = _config(node, "default") if has_default else None
            plans[name] = InputPlan(
                name,
                (*(known.nodes if known else ()), node.id),
                has_default,
                default,
                (*(known.targets if known else ()), *targets),
            )
    return plans


def _targets(graph: Graph, at: int) -> tuple[InputTarget, ...]:
    """The input ports node number ``at`` feeds in the same iteration."""
    found = []
    for target in dict.fromkeys(graph.successors[at]):
        node = graph.nodes[target]
        for port, feed in graph.feeds[target].items():
            if feed.source == at:
                found.append(InputTarget(node.id, port, node.inputs[port].annotation))
    return tuple(found)


def _outputs(
    nodes: list[ResolvedNode], names: list[str], index: dict[str, int]
) -> dict[str, OutputPlan]:
    return {
        _config(node, "name", node.id): OutputPlan(
            name=_config(node, "name", node.id),
            node=node.id,
            loop=names[index[node.id]],
            collect=_config(node, "collect", "list"),
        )
        for node in nodes
        if node.node_type.role is Role.OUTPUT
    }
