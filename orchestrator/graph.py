"""Graph algorithms over nodes numbered ``0..n-1``.

Integer indices and adjacency lists keep large graphs compact, so the cost of
validating and planning stays linear as workflows grow to 100,000 nodes.
Iterative throughout: a long chain never hits the recursion limit.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections import deque
from collections.abc import Iterator, Sequence

Adjacency = Sequence[Sequence[int]]


def topological_order(successors: Adjacency) -> list[int]:
    """Kahn's algorithm taking the lowest-numbered ready node first.

    The order is the same whatever the order of each node's successors (the
    order edges were written in), and follows node numbers wherever the
    edges leave it free. Nodes on or after a cycle are left out.
    """
    indegree = [0] * len(successors)
    for targets in successors:
        for target in targets:
            indegree[target] += 1
    ready = [i for i, degree in enumerate(indegree) if not degree]  # sorted: a valid heap
    order = []
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        node = pop(ready)
        order.append(node)
        for target in successors[node]:
            indegree[target] -= 1
            if not indegree[target]:
                push(ready, target)
    return order


def strongly_connected(successors: Adjacency) -> list[list[int]]:
    """Tarjan's algorithm: the components that hold a cycle, in discovery order.

    A component is returned when it has two or more nodes or a self-loop.
    """
    size = len(successors)
    index = [-1] * size
    low = [0] * size
    on_stack = [False] * size
    stack: list[int] = []
    found: list[list[int]] = []
    counter = 0
    for root in range(size):
        if index[root] >= 0:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            targets = successors[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if index[target] < 0:
                    work.append((target, 0))
                elif on_stack[target]:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in targets:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def cycle_in(component: Sequence[int], successors: Adjacency) -> list[int]:
    """One concrete cycle inside a strongly connected component, closed on its start.

    Returns ``[a, b, c, a]``: the shortest way from the component's first
    node back to itself (breadth-first).
    """
    inside = set(component)
    start = component[0]
    parent: dict[int, int] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in successors[node]:
            if target not in inside:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*path[::-1], start]
            if target not in parent:
                parent[target] = node
                queue.append(target)
    return [start, start]  # pragma: no cover - a component always closes


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large graph is built.

    Validation and planning allocate several objects per node and free none;
    the collector's repeated full scans would make compiling 100,000 nodes
    quadratic. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
