"""Live streams never join two GPU nodes: such a stream is accumulated instead.

A live stream runs its producer and its consumer side by side (README
"Streams"). Two GPU nodes joined by live streams, directly or through other
nodes, would need two runs on the GPUs at once, and a GPU worker takes one
run at a time unless it shares its device (the embedded engine always does):
the consumer would wait for a GPU the producer holds while the producer waits
for the consumer to read, and the job would hang. So the planner keeps at most
one GPU node in each group of nodes joined by live streams: walking the nodes
in dependency order, a live edge that would put a second GPU node into a
group is made an ordinary one, and its consumer reads the stream's
accumulated value (the whole stream, chunk by chunk, once the producer
ended). The plan's ``notes`` say which edges, and why.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from orchestrator.planner.plan import PlannedNode


class _Groups:
    """Nodes joined by live streams (union-find), with the GPU nodes of each group."""

    def __init__(self, nodes: MutableMapping[str, PlannedNode]) -> None:
        self.parent = {node_id: node_id for node_id in nodes}
        self.gpus = {node_id: int(node.route.gpu > 0) for node_id, node in nodes.items()}

    def find(self, node_id: str) -> str:
        while self.parent[node_id] != node_id:
            self.parent[node_id] = self.parent[self.parent[node_id]]
            node_id = self.parent[node_id]
        return node_id

    def join(self, a: str, b: str) -> bool:
        """Join the groups of ``a`` and ``b`` unless that puts two GPU nodes in one."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        if self.gpus[a] + self.gpus[b] > 1:
            return False
        self.parent[b] = a
        self.gpus[a] += self.gpus[b]
        return True


def accumulate_gpu_streams(nodes: MutableMapping[str, PlannedNode]) -> dict[str, str]:
    """Make ordinary every live edge that would join two GPU nodes (``nodes`` in
    dependency order, changed in place); returns a note per consumer changed."""
    if sum(1 for node in nodes.values() if node.route.gpu) < 2:
        return {}
    groups = _Groups(nodes)
    notes: dict[str, str] = {}
    for node_id, node in list(nodes.items()):
        if not node.live:
            continue
        cut = {b.source for b in node.inputs if b.stream and not groups.join(b.source, node_id)}
        if not cut:
            continue
        inputs = tuple(b._replace(stream=False) if b.source in cut else b for b in node.inputs)
        nodes[node_id] = node._replace(inputs=inputs, live=any(b.stream for b in inputs))
        ports = ", ".join(repr(b.port) for b in node.inputs if b.source in cut)
        sources = ", ".join(repr(s) for s in sorted(cut))
        notes[node_id] = (
            f"stream input {ports} of {node_id!r} reads the accumulated stream of {sources} "
            "(not live): live streams would run two GPU nodes side by side, and a GPU "
            "worker taking one run at a time could never admit the second"
        )
    return notes
