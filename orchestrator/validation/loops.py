"""Validation steps over the whole graph: cycles, loop membership, detachment, queues."""

from __future__ import annotations

from orchestrator.graph import cycle_in, strongly_connected, topological_order
from orchestrator.validation.checker import MAIN, Checker, Graph


def check_cycles(checker: Checker, graph: Graph) -> bool:
    """Report each cycle made of non-feedback edges, named node by node."""
    components = strongly_connected(graph.order, graph.successors)
    for component in components:
        cycle = cycle_in(component, graph.successors)
        first = graph.nodes[cycle[0]]
        checker.node_issue(
            first.index,
            f"cycle {' -> '.join(cycle)} has no feedback edge; mark the edge that carries a "
            "value into the next iteration with `feedback: true`",
        )
    return not components


def assign_loops(checker: Checker, graph: Graph) -> tuple[list[str], dict[str, str]]:
    """The topological order and the loop of each node (``main`` or a producer id).

    A node belongs to the loop of the producers upstream of it; one fed by two
    loops, and a producer fed from a loop, are reported.
    """
    order = topological_order(graph.order, graph.successors)
    loop_of: dict[str, str] = {}
    for node_id in order:
        node = graph.nodes[node_id]
        upstream = {loop_of[p] for p in graph.predecessors.get(node_id, ())} - {MAIN}
        if node.is_producer:
            if upstream:
                checker.node_issue(
                    node.index,
                    f"producer {node.label()} is fed by loop {sorted(upstream)[0]!r}; a producer's "
                    "inputs must come from the main stage (connect loops through a queue)",
                )
            if node_id == MAIN:
                checker.node_issue(
                    node.index, f"producer id {MAIN!r} is reserved for the main stage", "id"
                )
            loop_of[node_id] = node_id
        elif len(upstream) > 1:
            names = " and ".join(repr(name) for name in sorted(upstream))
            checker.node_issue(
                node.index,
                f"node {node.label()} is fed by two loops, {names}; connect the loops through a "
                "queue (a QueueWriter in one loop, a QueueReader in the other)",
            )
            loop_of[node_id] = sorted(upstream)[0]
        else:
            loop_of[node_id] = upstream.pop() if upstream else MAIN
    return order, loop_of


def detached_nodes(graph: Graph, order: list[str]) -> set[str]:
    """Non-blocking nodes and every node downstream of one."""
    detached: set[str] = set()
    for node_id in order:
        node = graph.nodes[node_id]
        if not node.blocking or any(p in detached for p in graph.predecessors.get(node_id, ())):
            detached.add(node_id)
    return detached


def check_feedback(checker: Checker, graph: Graph, loop_of: dict[str, str]) -> None:
    """A feedback edge stays inside one loop and does not enter its producer.

    A feedback edge may leave a detached node: its target then waits for the
    source's run of the previous iteration, wherever that run is.
    """
    for index, edge in graph.edges:
        if not edge.feedback:
            continue
        source, target = loop_of.get(edge.source_node), loop_of.get(edge.target_node)
        if source is None or target is None:
            continue
        if source == MAIN and target == MAIN:
            checker.edge_issue(
                index,
                f"feedback edge {edge.label} is in the main stage, which runs once; "
                "feedback edges carry values between iterations of a loop",
            )
        elif source != target:
            checker.edge_issue(
                index,
                f"feedback edge {edge.label} crosses from loop {source!r} to loop {target!r}; "
                "a feedback edge must stay inside one loop (use a queue between loops)",
            )
        elif graph.nodes[edge.target_node].is_producer:
            checker.edge_issue(
                index, f"feedback edge {edge.label} enters a producer; producers are fed by "
                "the main stage only",
            )


def check_loop_section(checker: Checker, graph: Graph) -> None:
    """Keys of ``loops:`` must name producer nodes."""
    producers = sorted(n.id for n in graph.nodes.values() if n.is_producer)
    for name in checker.workflow.loops:
        node = graph.nodes.get(name)
        if node is not None and node.is_producer:
            continue
        known = ", ".join(producers) or "none"
        what = "is not a producer node" if node is not None else "names no node"
        checker.issue(
            f"loops: {name!r} {what}; loops are keyed by their producer's id (producers: {known})",
            ("loops", name),
            node=name if node is not None else None,
        )


def check_outputs_and_queues(checker: Checker, graph: Graph) -> None:
    """Output names are unique; a job-scoped queue that is read is also written."""
    outputs: dict[str, str] = {}
    written: set[str] = set()
    readers: list[tuple[str, str]] = []
    for node in graph.nodes.values():
        config = node.config
        if node.spec.type == "Output":
            name = getattr(config, "name", node.id)
            if name in outputs:
                checker.node_issue(
                    node.index,
                    f"node {node.label()}: output name {name!r} is already used by node "
                    f"{outputs[name]!r}; output names must be unique",
                    "config",
                    "name",
                )
            outputs[name] = node.id
        queue, scope = getattr(config, "queue", None), getattr(config, "scope", None)
        if node.spec.type == "QueueWriter" and isinstance(queue, str):
            written.add(queue)
        elif node.spec.type == "QueueReader" and isinstance(queue, str) and scope == "job":
            readers.append((node.id, queue))
    for node_id, queue in readers:
        if queue not in written:
            checker.node_issue(
                graph.nodes[node_id].index,
                f"node {graph.nodes[node_id].label()} reads job-scoped queue {queue!r}, which no "
                "QueueWriter in this workflow writes; add a writer or set `scope: global`",
                "config",
                "queue",
            )
