"""Validation steps over single nodes and single edges."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from nodes.base import Node
from nodes.errors import UnknownNodeTypeError
from nodes.introspect import PortSpec, input_ports, type_label
from nodes.registry import NodeRegistry
from orchestrator.model.spec import EdgeSpec, NodeSpec
from orchestrator.validation.checker import (
    INVALID,
    SPECIAL_ROLES,
    Checker,
    Feed,
    Graph,
    Limits,
    ResolvedNode,
)
from orchestrator.validation.typecheck import assignable, carried, mimes_compatible


def check_nodes(checker: Checker, registry: NodeRegistry) -> Graph:
    """Resolve every node's type and config; report duplicates, unknowns, bad configs."""
    nodes: list[ResolvedNode] = []
    index: dict[str, int] = {}
    special: list[int] = []
    for position, spec in enumerate(checker.workflow.nodes):
        if spec.id in index:
            _report_duplicate(checker, position, spec.id)
            continue
        index[spec.id] = INVALID
        try:
            node_type = registry.get(spec.type)
        except UnknownNodeTypeError as exc:
            checker.node_issue(position, f"node {spec.id!r}: {exc}", "type")
            continue
        try:
            config = node_type.Config.model_validate(spec.config)
        except ValidationError as exc:
            _report_config(checker, position, spec, exc)
            continue
        problems = node_type.config_problems(config)
        for field, message in problems:
            checker.node_issue(
                position,
                f"node {spec.id!r} ({spec.type}): bad config {field}: {message}",
                "config",
                field,
            )
        if problems:
            continue
        _check_resources(checker, position, spec, node_type)
        node = ResolvedNode.of(spec, position, node_type, config)
        index[spec.id] = len(nodes)
        if node.is_producer or node_type.role in SPECIAL_ROLES or node_type.subworkflow_field:
            special.append(len(nodes))
            if node.is_producer:
                _check_producer_options(checker, node)
        nodes.append(node)
    graph = Graph.of(nodes, index)
    graph.special = special
    return graph


def _check_resources(
    checker: Checker, position: int, spec: NodeSpec, node_type: type[Node]
) -> None:
    if spec.resources is None:
        return
    declared = node_type.resources
    if not declared.gpu:
        checker.node_issue(
            position,
            f"node {spec.id!r} ({spec.type}): resources.vram_mb applies to GPU node types "
            f"only, and {spec.type} runs on no GPU; remove `resources`",
            "resources",
            "vram_mb",
        )
    elif spec.resources.vram_mb < declared.vram_mb:
        checker.node_issue(
            position,
            f"node {spec.id!r} ({spec.type}): resources.vram_mb {spec.resources.vram_mb} is "
            f"below the {declared.vram_mb} MiB its type declares; a node may raise it, "
            f"not lower it",
            "resources",
            "vram_mb",
        )


def _report_duplicate(checker: Checker, position: int, node_id: str) -> None:
    first = next(i for i, spec in enumerate(checker.workflow.nodes) if spec.id == node_id)
    line = checker.workflow.source.line_for(("nodes", first))
    where = f" (first at line {line})" if line else ""
    checker.node_issue(position, f"duplicate node id {node_id!r}{where}; ids must be unique", "id")


def _report_config(checker: Checker, position: int, spec: NodeSpec, exc: ValidationError) -> None:
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        field = ".".join(str(p) for p in loc) or "config"
        got = "" if error["type"] in ("missing", "extra_forbidden") else _got(error.get("input"))
        checker.node_issue(
            position,
            f"node {spec.id!r} ({spec.type}): bad config {field}: {error['msg']}{got}",
            "config",
            *loc,
        )


def _got(value: Any) -> str:
    # JSON spelling, so that `true` in the file reads `true` here, not `True`.
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return f" (got {text[:80]})"


def _check_producer_options(checker: Checker, node: ResolvedNode) -> None:
    spec = node.spec
    if spec.blocking is False:
        checker.node_issue(
            node.position,
            f"producer {node.label()} cannot be non-blocking: it paces its loop",
            "blocking",
        )
    if spec.cache:
        checker.node_issue(
            node.position,
            f"producer {node.label()} cannot be cached: each call yields a new item",
            "cache",
        )


def check_edges(checker: Checker, graph: Graph) -> None:
    """Check every edge's endpoints, port types and fan-in; fill the graph's adjacency."""
    nodes, index_of, feeds = graph.nodes, graph.index, graph.feeds
    successors, predecessors = graph.successors, graph.predecessors
    checked: dict[tuple[type, str, type, str], PortSpec] = {}
    for index, edge in enumerate(checker.workflow.edges):
        source_id, _, source_port = edge.source.partition(".")
        target_id, _, target_port = edge.target.partition(".")
        source_at, target_at = index_of.get(source_id, None), index_of.get(target_id, None)
        if source_at is None or target_at is None or source_at < 0 or target_at < 0:
            _report_missing(checker, index, edge, source_at, target_at)
            if target_at is not None and target_at >= 0:
                graph.broken_feeds.add((target_at, target_port))
            continue
        source, target = nodes[source_at], nodes[target_at]
        key = (source.node_type, source_port, target.node_type, target_port)
        in_port = checked.get(key)
        if in_port is None:
            in_port = _check_ports(checker, index, edge, source, target)
            if in_port is None:
                graph.broken_feeds.add((target_at, target_port))
                continue
            checked[key] = in_port
        fed = feeds[target_at]
        taken = fed.get(target_port)
        if taken is not None:
            checker.edge_issue(
                index,
                f"input {edge.target} already has an edge ({taken.edge.label}); "
                "an input takes one edge: merge values in a node first",
                target_id,
            )
            continue
        if edge.feedback and not _initial_fits(checker, index, edge, in_port.annotation):
            graph.broken_feeds.add((target_at, target_port))
            continue
        fed[target_port] = Feed(index, edge, source_at, source_port, edge.feedback)
        graph.edges.append((index, edge))
        if not edge.feedback:
            successors[source_at].append(target_at)
            predecessors[target_at].append(source_at)


def _check_ports(
    checker: Checker, index: int, edge: EdgeSpec, source: ResolvedNode, target: ResolvedNode
) -> PortSpec | None:
    """The target port when the edge's ports exist and their types fit, else ``None``."""
    out_port = source.outputs.get(edge.source_port)
    in_port = target.inputs.get(edge.target_port)
    if out_port is None:
        checker.edge_issue(index, _unknown_port(source, edge.source_port, "output"), source.id)
    if in_port is None:
        checker.edge_issue(index, _unknown_port(target, edge.target_port, "input"), target.id)
    if out_port is None or in_port is None:
        return None
    if not assignable(
        carried(out_port.annotation, out_port.stream, in_port.stream), in_port.annotation
    ):
        accumulated = ""
        if out_port.stream and not in_port.stream:
            value = type_label(carried(out_port.annotation, True, False))
            accumulated = f" (a stream feeds a non-stream input its accumulated value, {value})"
        checker.edge_issue(
            index,
            f"edge {edge.label}: output {edge.source} is {out_port.type_label} but input "
            f"{edge.target} takes {in_port.type_label}{accumulated}",
            target.id,
        )
        return None
    if not mimes_compatible(out_port.mime, in_port.mime):
        checker.edge_issue(
            index,
            f"edge {edge.label}: output {edge.source} produces "
            f"{', '.join(out_port.mime or ())} but input {edge.target} accepts "
            f"{', '.join(in_port.mime or ())}",
            target.id,
        )
        return None
    return in_port


def _report_missing(
    checker: Checker, index: int, edge: EdgeSpec, source_at: int | None, target_at: int | None
) -> None:
    # A declared node that failed its own checks (INVALID) was reported already.
    for at, side, node_id in (
        (source_at, "from", edge.source_node),
        (target_at, "to", edge.target_node),
    ):
        if at is None:
            checker.edge_issue(
                index,
                f"edge {edge.label}: `{side}` node {node_id!r} is not a node of this workflow",
            )


def _unknown_port(node: ResolvedNode, port: str, side: str) -> str:
    ports = node.outputs if side == "output" else node.inputs
    known = ", ".join(ports) or "none"
    return f"node {node.label()} has no {side} port {port!r}; its {side}s are: {known}"


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _initial_fits(checker: Checker, index: int, edge: EdgeSpec, annotation: Any) -> bool:
    if not edge.has_initial:
        return True
    try:
        adapter = _adapters.get(annotation)
    except TypeError:
        adapter = None
    if adapter is None:
        adapter = TypeAdapter(annotation)
        with contextlib.suppress(TypeError):
            _adapters[annotation] = adapter
    try:
        adapter.validate_python(edge.initial)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]["msg"]
        checker.edge_issue(
            index,
            f"edge {edge.label}: initial {edge.initial!r} does not fit {edge.target}: {first}",
            edge.target_node,
        )
        return False
    return True


def check_required_inputs(checker: Checker, graph: Graph) -> None:
    """Every required input must be fed by an edge (a feedback edge needs ``initial``)."""
    for at, (node, feeds) in enumerate(zip(graph.nodes, graph.feeds, strict=True)):
        for port in _required(node.node_type):
            fed = feeds.get(port)
            if fed is None and (at, port) in graph.broken_feeds:
                continue
            if fed is None:
                checker.node_issue(
                    node.position,
                    f"node {node.label()}: required input {port!r} has no edge and no "
                    "default; connect an output to it",
                )
            elif fed.feedback and not fed.edge.has_initial:
                checker.edge_issue(
                    fed.position,
                    f"feedback edge {fed.edge.label} needs `initial`: iteration 0 has no value "
                    f"for required input {port!r}",
                    node.id,
                )


_REQUIRED: dict[type[Node], tuple[str, ...]] = {}


def _required(node_type: type[Node]) -> tuple[str, ...]:
    names = _REQUIRED.get(node_type)
    if names is None:
        ports = input_ports(node_type).values()
        names = _REQUIRED[node_type] = tuple(port.name for port in ports if port.required)
    return names


def check_size(checker: Checker, limits: Limits) -> bool:
    """Whether the workflow has nodes and is within the size limits (reporting when not)."""
    workflow = checker.workflow
    if not workflow.nodes:
        checker.issue(
            "workflow has no nodes, so it would do nothing; add at least one node", ("nodes",)
        )
        return False
    ok = True
    if len(workflow.nodes) > limits.max_nodes:
        checker.issue(
            f"workflow has {len(workflow.nodes):,} nodes, over the limit of {limits.max_nodes:,}",
            ("nodes",),
        )
        ok = False
    if len(workflow.edges) > limits.max_edges:
        checker.issue(
            f"workflow has {len(workflow.edges):,} edges, over the limit of {limits.max_edges:,}",
            ("edges",),
        )
        ok = False
    return ok
