"""Workflow shapes for the benchmarks, built with the public builder."""

from __future__ import annotations

from orchestrator import Workflow, WorkflowBuilder

OPS = ("add", "mul", "sub", "max")


def chain(size: int) -> Workflow:
    """``Constant → Math → Math → …``: one long dependency chain."""
    builder = WorkflowBuilder(f"chain-{size}")
    builder.node("n0", "Constant", config={"value": 1})
    previous = "n0.value"
    for i in range(1, size):
        builder.node(f"n{i}", "Math", config={"op": OPS[i % len(OPS)]})
        builder.edge(previous, f"n{i}.a").edge(previous, f"n{i}.b")
        previous = f"n{i}.result"
    return builder.build()


def fan_out(size: int) -> Workflow:
    """One source feeding ``size - 2`` independent nodes, joined by one fan-in list."""
    builder = WorkflowBuilder(f"fan-out-{size}")
    builder.node("source", "Constant", config={"value": 2})
    for i in range(size - 2):
        builder.node(f"w{i}", "Math", config={"op": OPS[i % len(OPS)]})
        builder.edge("source.value", f"w{i}.a").edge("source.value", f"w{i}.b")
    builder.node("last", "Format", config={"template": "done {value}"})
    builder.edge("w0.result", "last.value")
    return builder.build()


def small_loops(size: int) -> Workflow:
    """``size / 4`` independent loops of four nodes with a feedback edge each."""
    builder = WorkflowBuilder(f"loops-{size}")
    for i in range(size // 4):
        builder.node(f"r{i}", "Range", config={"stop": 10 + i % 7})
        builder.node(f"m{i}", "Math", config={"op": "add"})
        builder.node(f"f{i}", "Format", config={"template": f"loop {i}: {{value}}"})
        builder.node(f"p{i}", "Preview", config={"label": f"loop {i}"})
        builder.edge(f"r{i}.value", f"m{i}.a")
        builder.edge(f"m{i}.result", f"m{i}.b", feedback=True, initial=0)
        builder.edge(f"m{i}.result", f"f{i}.value").edge(f"f{i}.text", f"p{i}.value")
        builder.loop(f"r{i}", on_error="continue")
    return builder.build()


def fan_out_fan_in(width: int) -> Workflow:
    """A source, ``width`` workers, then a binary tree of adds down to one Output."""
    b = WorkflowBuilder(f"fan-{width}")
    b.node("src", "Constant", config={"value": 3})
    level = []
    for i in range(width):
        b.node(f"w{i}", "Math", config={"op": "mul"})
        b.edge("src.value", f"w{i}.a").edge("src.value", f"w{i}.b")
        level.append(f"w{i}.result")
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            node = f"t{depth}_{j // 2}"
            b.node(node, "Math", config={"op": "add"})
            b.edge(level[j], f"{node}.a").edge(level[j + 1], f"{node}.b")
            nxt.append(f"{node}.result")
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    b.node("total", "Output", config={"name": "total"})
    b.edge(level[0], "total.value")
    return b.build()


SHAPES = {"chain": chain, "fan-out": fan_out, "small loops": small_loops}
