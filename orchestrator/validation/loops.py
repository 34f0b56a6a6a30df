"""Validation steps over the whole graph: cycles, loop membership, detachment, queues.

Nodes are numbers here (see :class:`~orchestrator.validation.checker.Graph`);
a loop is the number of its producer, and ``None`` is the main stage (which has
no producer; its name is :data:`~orchestrator.validation.checker.MAIN`).
"""

from __future__ import annotations

from nodes.base import Role
from nodes.context import MAIN
from orchestrator.graph import cycle_in, strongly_connected, topological_order
from orchestrator.validation.checker import Checker, Graph


def check_cycles(checker: Checker, graph: Graph) -> list[int] | None:
    """The topological order, or ``None`` after reporting each cycle node by node.

    Cycles are made of non-feedback edges; Tarjan's algorithm runs only when a
    topological sort could not place every node.
    """
    order = topological_order(graph.successors)
    if len(order) == len(graph.nodes):
        return order
    for component in strongly_connected(graph.successors):
        cycle = [graph.nodes[i].id for i in cycle_in(component, graph.successors)]
        checker.node_issue(
            graph.nodes[component[0]].position,
            f"cycle {' -> '.join(cycle)} has no feedback edge; mark the edge that carries a "
            "value into the next iteration with `feedback: true`",
        )
    return None


def assign_loops(checker: Checker, graph: Graph, order: list[int]) -> list[int | None]:
    """The loop of each node: its upstream producer's number, or ``None`` (the main stage).

    A node fed by two loops, and a producer fed from a loop, are reported.
    """
    nodes, predecessors = graph.nodes, graph.predecessors
    loop_of: list[int | None] = [None] * len(nodes)
    for at in order:
        loop: int | None = None
        other: int | None = None
        for source in predecessors[at]:
            upstream = loop_of[source]
            if upstream is None or upstream == loop:
                continue
            if loop is None:
                loop = upstream
            else:
                other = upstream
        node = nodes[at]
        if node.is_producer:
            _check_producer(checker, graph, at, loop)
            loop_of[at] = at
        elif loop is not None and other is not None:
            names = " and ".join(sorted((repr(nodes[loop].id), repr(nodes[other].id))))
            checker.node_issue(
                node.position,
                f"node {node.label()} is fed by two loops, {names}; connect the loops through a "
                "queue (a QueueWriter in one loop, a QueueReader in the other)",
            )
            loop_of[at] = loop
        else:
            loop_of[at] = loop
    return loop_of


def _check_producer(checker: Checker, graph: Graph, at: int, upstream: int | None) -> None:
    node = graph.nodes[at]
    if upstream is not None:
        checker.node_issue(
            node.position,
            f"producer {node.label()} is fed by loop {graph.nodes[upstream].id!r}; a producer's "
            "inputs must come from the main stage (connect loops through a queue)",
        )
    if node.id == MAIN:
        checker.node_issue(
            node.position, f"producer id {MAIN!r} is reserved for the main stage", "id"
        )


def detached_nodes(graph: Graph, order: list[int]) -> list[bool]:
    """Per node number: non-blocking, or downstream of a non-blocking node."""
    nodes, predecessors = graph.nodes, graph.predecessors
    detached = [False] * len(nodes)
    for at in order:
        if not nodes[at].blocking or any(detached[p] for p in predecessors[at]):
            detached[at] = True
    return detached


def check_feedback(checker: Checker, graph: Graph, loop_of: list[int | None]) -> None:
    """A feedback edge stays inside one loop and does not enter its producer.

    A feedback edge may leave a detached node: its target then waits for the
    source's run of the previous iteration, wherever that run is.
    """
    for index, edge in graph.edges:
        if not edge.feedback:
            continue
        source_at, target_at = graph.index[edge.source_node], graph.index[edge.target_node]
        source, target = loop_of[source_at], loop_of[target_at]
        if source is None and target is None:
            checker.edge_issue(
                index,
                f"feedback edge {edge.label} is in the main stage, which runs once; "
                "feedback edges carry values between iterations of a loop",
            )
        elif source != target:
            checker.edge_issue(
                index,
                f"feedback edge {edge.label} crosses from loop {_loop_name(graph, source)!r} to "
                f"loop {_loop_name(graph, target)!r}; a feedback edge must stay inside one loop "
                "(use a queue between loops)",
            )
        elif graph.nodes[target_at].is_producer:
            checker.edge_issue(
                index,
                f"feedback edge {edge.label} enters a producer; producers are fed by the main "
                "stage only",
            )


def _loop_name(graph: Graph, loop: int | None) -> str:
    return MAIN if loop is None else graph.nodes[loop].id


def check_loop_section(checker: Checker, graph: Graph) -> None:
    """Keys of ``loops:`` must name producer nodes."""
    producers = sorted(graph.nodes[at].id for at in graph.special if graph.nodes[at].is_producer)
    for name in checker.workflow.loops:
        at = graph.index.get(name)
        if at is not None and at >= 0 and graph.nodes[at].is_producer:
            continue
        known = ", ".join(producers) or "none"
        what = "is not a producer node" if at is not None else "names no node"
        checker.issue(
            f"loops: {name!r} {what}; loops are keyed by their producer's id (producers: {known})",
            ("loops", name),
            node=name if at is not None else None,
        )


def check_outputs_and_queues(checker: Checker, graph: Graph) -> None:
    """Output names are unique; a queue name has one scope; a job-scoped queue read is written.

    The plan keys queues by name, and a job-scoped reader waits on writers of
    its own scope only, so one name used with both scopes is refused.
    """
    outputs: dict[str, str] = {}
    scopes: dict[str, tuple[str, str]] = {}
    written: set[str] = set()
    readers = []
    for at in graph.special:
        node = graph.nodes[at]
        role = node.node_type.role
        if role is Role.OUTPUT:
            name = getattr(node.config, "name", node.id)
            if name in outputs:
                checker.node_issue(
                    node.position,
                    f"node {node.label()}: output name {name!r} is already used by node "
                    f"{outputs[name]!r}; output names must be unique",
                    "config",
                    "name",
                )
            outputs[name] = node.id
        elif role.queue:
            queue, scope = getattr(node.config, "queue", ""), getattr(node.config, "scope", "job")
            first_scope, first = scopes.setdefault(queue, (scope, node.id))
            if first_scope != scope:
                checker.node_issue(
                    node.position,
                    f"node {node.label()} uses queue {queue!r} with scope {scope!r}, but node "
                    f"{first!r} uses it with scope {first_scope!r}; a queue name has one scope: "
                    "rename one of the queues or give both the same `scope`",
                    "config",
                    "scope",
                )
            elif role is Role.QUEUE_WRITER:
                written.add(queue)
            elif scope == "job":
                readers.append(node)
    for node in readers:
        queue = getattr(node.config, "queue", "")
        if queue not in written:
            checker.node_issue(
                node.position,
                f"node {node.label()} reads job-scoped queue {queue!r}, which no QueueWriter in "
                "this workflow writes; add a writer or set `scope: global`",
                "config",
                "queue",
            )
