"""Graph algorithms over node ids: strongly connected components, cycles, order.

Iterative throughout, so a 100,000-node chain does not hit the recursion limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence


def strongly_connected(
    nodes: Sequence[str], successors: Mapping[str, Sequence[str]]
) -> list[list[str]]:
    """Tarjan's algorithm: the components that contain a cycle, in discovery order.

    A component is returned when it has two or more nodes or a self-loop.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            nexts = successors.get(node, ())
            if child < len(nexts):
                work.append((node, child + 1))
                succ = nexts[child]
                if succ not in index:
                    work.append((succ, 0))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors.get(node, ()):
                    found.append(component[::-1])
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def cycle_in(component: Iterable[str], successors: Mapping[str, Sequence[str]]) -> list[str]:
    """One concrete cycle inside a strongly connected component, closed on its start.

    Returns ``[a, b, c, a]``: the shortest way back to ``a`` (breadth-first).
    """
    members = list(component)
    inside = set(members)
    start = members[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in successors.get(node, ()):
            if succ not in inside:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*path[::-1], start]
            if succ not in parent:
                parent[succ] = node
                queue.append(succ)
    return [start, start]  # pragma: no cover - a component always closes


def topological_order(
    nodes: Sequence[str], successors: Mapping[str, Sequence[str]]
) -> list[str]:
    """Kahn's algorithm, stable in the order of ``nodes``; cyclic nodes are left out."""
    indegree = dict.fromkeys(nodes, 0)
    for node in nodes:
        for succ in successors.get(node, ()):
            if succ in indegree:
                indegree[succ] += 1
    ready = deque(node for node in nodes if indegree[node] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for succ in successors.get(node, ()):
            if succ in indegree:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
    return order
