"""Validation steps over single nodes and single edges."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from nodes.errors import UnknownNodeTypeError
from nodes.registry import NodeRegistry
from orchestrator.model.spec import EdgeSpec
from orchestrator.validation.checker import Checker, Graph, Limits, ResolvedNode
from orchestrator.validation.typecheck import assignable, mimes_compatible


def check_nodes(checker: Checker, registry: NodeRegistry) -> dict[str, ResolvedNode]:
    """Resolve every node's type and config; report duplicates, unknowns, bad configs."""
    resolved: dict[str, ResolvedNode] = {}
    first_line: dict[str, int | None] = {}
    source = checker.workflow.source
    for index, spec in enumerate(checker.workflow.nodes):
        if spec.id in first_line:
            where = f" (first at line {first_line[spec.id]})" if first_line[spec.id] else ""
            checker.node_issue(index, f"duplicate node id {spec.id!r}{where}; ids must be unique", "id")
            continue
        first_line[spec.id] = source.line_for(("nodes", index))
        try:
            node_type = registry.get(spec.type)
        except UnknownNodeTypeError as exc:
            checker.node_issue(index, f"node {spec.id!r}: {exc}", "type")
            continue
        try:
            config = node_type.Config.model_validate(spec.config)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = tuple(error["loc"])
                field = ".".join(str(p) for p in loc) or "config"
                checker.node_issue(
                    index,
                    f"node {spec.id!r} ({spec.type}): bad config {field}: {error['msg']}",
                    "config",
                    *loc,
                )
            continue
        resolved[spec.id] = ResolvedNode(spec, index, node_type, config)
        _check_options(checker, resolved[spec.id])
    return resolved


def _check_options(checker: Checker, node: ResolvedNode) -> None:
    spec = node.spec
    if node.is_producer and spec.blocking is False:
        checker.node_issue(
            node.index,
            f"producer {node.label()} cannot be non-blocking: it paces its loop",
            "blocking",
        )
    if node.is_producer and spec.cache:
        checker.node_issue(
            node.index, f"producer {node.label()} cannot be cached: each call yields a new item",
            "cache",
        )


def check_edges(checker: Checker, graph: Graph) -> None:
    """Check every edge's endpoints, port types and fan-in; fill the graph's adjacency."""
    for index, edge in enumerate(checker.workflow.edges):
        source = graph.nodes.get(edge.source_node)
        target = graph.nodes.get(edge.target_node)
        if not _endpoints_exist(checker, graph, index, edge):
            continue
        assert source is not None and target is not None
        out_port = source.outputs.get(edge.source_port)
        in_port = target.inputs.get(edge.target_port)
        if out_port is None:
            checker.edge_issue(index, _unknown_port(source, edge.source_port, "output"), source.id)
        if in_port is None:
            checker.edge_issue(index, _unknown_port(target, edge.target_port, "input"), target.id)
        if out_port is None or in_port is None:
            continue
        taken = graph.feeds.setdefault(target.id, {}).get(edge.target_port)
        if taken is not None:
            checker.edge_issue(
                index,
                f"input {edge.target} already has an edge ({taken[1].label}); "
                "an input takes one edge: merge values in a node first",
                target.id,
            )
            continue
        if not assignable(out_port.annotation, in_port.annotation):
            checker.edge_issue(
                index,
                f"edge {edge.label}: output {edge.source} is {out_port.type_label} but input "
                f"{edge.target} takes {in_port.type_label}",
                target.id,
            )
            continue
        if not mimes_compatible(out_port.mime, in_port.mime):
            checker.edge_issue(
                index,
                f"edge {edge.label}: output {edge.source} produces "
                f"{', '.join(out_port.mime or ())} but input {edge.target} accepts "
                f"{', '.join(in_port.mime or ())}",
                target.id,
            )
            continue
        if edge.feedback and not _initial_fits(checker, index, edge, in_port.annotation):
            continue
        graph.feeds[target.id][edge.target_port] = (index, edge)
        graph.edges.append((index, edge))
        if not edge.feedback:
            graph.successors.setdefault(source.id, []).append(target.id)
            graph.predecessors.setdefault(target.id, []).append(source.id)


def _endpoints_exist(checker: Checker, graph: Graph, index: int, edge: EdgeSpec) -> bool:
    ok = True
    for node_id, side in ((edge.source_node, "from"), (edge.target_node, "to")):
        if node_id in graph.nodes:
            continue
        ok = False
        declared = any(spec.id == node_id for spec in checker.workflow.nodes)
        reason = "is itself invalid" if declared else "is not a node of this workflow"
        if not declared:
            checker.edge_issue(index, f"edge {edge.label}: `{side}` node {node_id!r} {reason}")
    return ok


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
    try:
        adapter.validate_python(edge.initial)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]["msg"]
        checker.edge_issue(
            index, f"edge {edge.label}: initial {edge.initial!r} does not fit {edge.target}: {first}",
            edge.target_node,
        )
        return False
    return True


def check_required_inputs(checker: Checker, graph: Graph) -> None:
    """Every required input must be fed by an edge (a feedback edge needs ``initial``)."""
    for node in graph.nodes.values():
        feeds = graph.feeds.get(node.id, {})
        for port in node.inputs.values():
            fed = feeds.get(port.name)
            if fed is None and port.required:
                checker.node_issue(
                    node.index,
                    f"node {node.label()}: required input {port.name!r} has no edge and no "
                    "default; connect an output to it",
                )
            elif fed is not None and fed[1].feedback and port.required and not fed[1].has_initial:
                checker.edge_issue(
                    fed[0],
                    f"feedback edge {fed[1].label} needs `initial`: iteration 0 has no value "
                    f"for required input {port.name!r}",
                    node.id,
                )


def check_size(checker: Checker, limits: Limits) -> bool:
    """Whether the workflow is within the size limits (reporting when not)."""
    workflow = checker.workflow
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
