"""A job's graph as SVG, drawn on the server: nodes coloured by health, loops boxed.

Layout is plain and stable: each loop (the main stage first) is a band of its
own, boxed and labelled; a node's column is its longest dataflow path from a
source (feedback edges left out), so edges run left to right; nodes sharing a
column in a band stack downwards. A pure function of the plan and the health
report: the same job draws the same picture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from orchestrator.planner import Plan

NODE_W = 164
NODE_H = 46
GAP_X = 56
GAP_Y = 14
PAD = 16
BAND_HEAD = 30
BAND_GAP = 18


@dataclass(frozen=True)
class Box:
    """Where a node is drawn (top-left corner)."""

    x: float
    y: float


def columns(plan: Plan) -> dict[str, int]:
    """Each node's longest path from a source, feedback edges left out."""
    memo: dict[str, int] = {}

    def depth(node_id: str, seen: frozenset[str]) -> int:
        if node_id in memo:
            return memo[node_id]
        sources = [
            b.source
            for b in plan.nodes[node_id].inputs
            if not b.feedback and b.source in plan.nodes and b.source not in seen
        ]
        value = max((depth(s, seen | {node_id}) + 1 for s in sources), default=0)
        memo[node_id] = value
        return value

    return {node_id: depth(node_id, frozenset()) for node_id in plan.nodes}


def layout(plan: Plan) -> tuple[dict[str, Box], list[tuple[str, float, float, float]], float]:
    """Node boxes, loop bands ``(loop, top, bottom, right)`` and the total height."""
    column = columns(plan)
    boxes: dict[str, Box] = {}
    bands: list[tuple[str, float, float, float]] = []
    top = PAD
    for loop in plan.all_loops():
        members = [n for n in loop.nodes if n in plan.nodes]
        if not members:
            continue
        stacks: dict[int, int] = {}
        for node_id in sorted(members, key=lambda n: (column[n], plan.nodes[n].position)):
            slot = stacks.get(column[node_id], 0)
            stacks[column[node_id]] = slot + 1
            x = PAD * 2 + column[node_id] * (NODE_W + GAP_X)
            boxes[node_id] = Box(x, top + BAND_HEAD + slot * (NODE_H + GAP_Y))
        rows = max(stacks.values())
        bottom = top + BAND_HEAD + rows * (NODE_H + GAP_Y) - GAP_Y + PAD
        right = max(boxes[n].x for n in members) + NODE_W + PAD
        bands.append((loop.name, top, bottom, right))
        top = bottom + BAND_GAP
    return boxes, bands, top - BAND_GAP + PAD


def render_svg(plan: Plan, health: Mapping[str, Mapping[str, Any]]) -> str:
    """The graph of ``plan`` as an ``<svg>`` element; ``health`` as :func:`node_health`."""
    boxes, bands, height = layout(plan)
    width = max((right for *_, right in bands), default=200) + PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="graph of workflow {escape(plan.workflow)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    for name, top, bottom, right in bands:
        label = "main stage" if name == plan.main.name else f"loop {name}"
        parts.append(
            f'<g class="band" data-loop="{escape(name)}"><rect x="{PAD}" y="{top}" '
            f'width="{right - PAD:.0f}" height="{bottom - top:.0f}" rx="10"/>'
            f'<text x="{PAD + 12}" y="{top + 19}" class="band-label">{escape(label)}</text></g>'
        )
    for node_id, node in plan.nodes.items():
        for binding in node.inputs:
            if binding.source in boxes and node_id in boxes:
                parts.append(_edge(boxes[binding.source], boxes[node_id], binding.feedback))
    for node_id, node in plan.nodes.items():
        if node_id in boxes:
            parts.append(_node(node_id, node.type_name, node.detached, boxes[node_id], health))
    parts.append("</svg>")
    return "".join(parts)


def _edge(source: Box, target: Box, feedback: bool) -> str:
    x1, y1 = source.x + NODE_W, source.y + NODE_H / 2
    x2, y2 = target.x, target.y + NODE_H / 2
    if feedback:  # back to an earlier column: loop under both nodes
        low = max(source.y, target.y) + NODE_H + GAP_Y / 2
        path = (
            f"M{x1},{y1} C{x1 + 40},{y1} {x1 + 40},{low} {x1},{low} "
            f"L{x2},{low} C{x2 - 40},{low} {x2 - 40},{y2} {x2},{y2}"
        )
        return f'<path class="edge feedback" d="{path}" marker-end="url(#arrow)"/>'
    bend = max(24.0, (x2 - x1) / 2)
    path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    return f'<path class="edge" d="{path}" marker-end="url(#arrow)"/>'


def _node(
    node_id: str,
    type_name: str,
    detached: bool,
    box: Box,
    health: Mapping[str, Mapping[str, Any]],
) -> str:
    report = health.get(node_id)
    state = str(report["health"]) if report else "idle"
    title = f"{node_id} ({type_name}): {state}"
    if report:
        title += f", {report['succeeded']} succeeded, {report['failed']} failed"
    classes = f"node health-{escape(state)}" + (" detached" if detached else "")
    return (
        f'<g class="{classes}" data-node="{escape(node_id)}" data-health="{escape(state)}">'
        f"<title>{escape(title)}</title>"
        f'<rect x="{box.x}" y="{box.y}" width="{NODE_W}" height="{NODE_H}" rx="7"/>'
        f'<circle cx="{box.x + 14}" cy="{box.y + 16}" r="4.5" class="dot"/>'
        f'<text x="{box.x + 26}" y="{box.y + 20}" class="node-id">{escape(_clip(node_id))}</text>'
        f'<text x="{box.x + 26}" y="{box.y + 36}" class="node-type">{escape(_clip(type_name))}'
        "</text></g>"
    )


def _clip(text: str, limit: int = 19) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
