"""Random main-stage graphs answered in random order: the job always ends, and cleanly."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.results import RunError, RunResult
from orchestrator.scheduler import Dispatch, JobChanged, LoopControl, RunChanged
from orchestrator.states import DesiredLoopState
from tests.scheduler.scheduler_harness import Driver, of_type, plan_of

OUTCOMES = ("ok", "fail", "fatal", "flaky")
TERMINAL = {"succeeded", "cached", "failed", "skipped", "cancelled"}


@st.composite
def graphs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    """A workflow of chains, fan-outs and fan-ins (some detached), and each node's outcome."""
    count = draw(st.integers(1, 8))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    outcomes: dict[str, str] = {}
    for i in range(count):
        node_id = f"n{i}"
        arity = 0 if i == 0 else draw(st.integers(0, 2))
        sources = [f"n{draw(st.integers(0, i - 1))}" for _ in range(arity)]
        outcome = draw(st.sampled_from(OUTCOMES))
        outcomes[node_id] = outcome
        retry = {"attempts": 2, "backoff_s": 0.5} if outcome in ("flaky", "fatal") else None
        if arity == 0:
            entry: dict[str, Any] = {"id": node_id, "type": "Constant", "config": {"value": i}}
        elif arity == 1:
            entry = {"id": node_id, "type": "Sleep", "config": {"seconds": 0}}
            edges.append(
                {"from": f"{sources[0]}.{_port(sources[0], nodes)}", "to": f"{node_id}.value"}
            )
        else:
            entry = {"id": node_id, "type": "Math", "config": {"op": "add"}}
            for port, source in zip("ab", sources, strict=True):
                edges.append(
                    {"from": f"{source}.{_port(source, nodes)}", "to": f"{node_id}.{port}"}
                )
        if retry:
            entry["retry"] = retry
        if i and draw(st.booleans()) and draw(st.booleans()):
            entry["blocking"] = False  # detached, with everything downstream of it
        nodes.append(entry)
    return {"name": "random", "nodes": nodes, "edges": edges}, outcomes


def _port(source: str, nodes: list[dict[str, Any]]) -> str:
    entry = next(n for n in nodes if n["id"] == source)
    return "result" if entry["type"] == "Math" else "value"


def _behaviour(outcome: str) -> Any:
    def answer(d: Dispatch) -> RunResult | dict[str, Any]:
        value = sum(v for v in d.inputs.values() if isinstance(v, int))
        port = "result" if d.type_name == "Math" else "value"
        if outcome == "fail" or (outcome == "flaky" and d.attempt == 1):
            return RunResult(d.run_id, d.attempt, "failed", error=RunError("NodeError", "random"))
        if outcome == "fatal":
            return RunResult(
                d.run_id, d.attempt, "failed", error=RunError("E", "fatal", retryable=False)
            )
        return {port: value}

    return answer


@settings(max_examples=150, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_a_random_main_stage_always_ends_and_respects_dataflow(
    graph: tuple[dict[str, Any], dict[str, str]], rng: random.Random
) -> None:
    workflow, outcomes = graph
    plan = plan_of(json.dumps(workflow))
    driver = Driver(plan, behaviour={n: _behaviour(o) for n, o in outcomes.items()})

    ended = driver.run(pick=rng.choice, max_steps=500)

    finished: set[str] = set()
    terminal: dict[str, list[str]] = {}
    retried: list[str] = []
    for command in driver.all_commands():
        if isinstance(command, Dispatch):
            upstream = {f"j:main:0:{n}" for n in command.node.upstream}
            assert upstream <= finished, f"{command.run_id} dispatched before {upstream - finished}"
        elif isinstance(command, RunChanged):
            if command.status in TERMINAL:
                terminal.setdefault(command.run_id, []).append(command.status)
                if command.status == "succeeded":
                    finished.add(command.run_id)
            elif command.status == "retrying":
                retried.append(command.node.id)
    dispatched = {d.run_id for d in of_type(driver.all_commands(), Dispatch)}
    assert ended.status in ("completed", "failed")
    assert all(len(terminal.get(run_id, [])) == 1 for run_id in dispatched)
    # Every node of the stage ends exactly once: it ran, or was skipped.
    assert {run_id: len(s) for run_id, s in terminal.items()} == {
        f"j:main:0:{n}": 1 for n in plan.nodes
    }
    failed = any(s == ["failed"] for s in terminal.values())
    assert ended.status == ("failed" if failed else "completed")
    first_tries = [d.node.id for d in of_type(driver.all_commands(), Dispatch) if d.attempt == 1]
    assert sorted(retried) == sorted(n for n in first_tries if outcomes[n] == "flaky")
    assert driver.inflight == {}
    assert of_type(driver.steps[-1], JobChanged)[-1] == ended


@st.composite
def loops(draw: st.DrawFn) -> tuple[dict[str, Any], dict[tuple[str, int], str]]:
    """A loop over a few items with a random body, policy and per-iteration outcomes."""
    items = draw(st.integers(0, 4))
    count = draw(st.integers(1, 5))
    nodes: list[dict[str, Any]] = [{"id": "p", "type": "Range", "config": {"stop": items}}]
    edges: list[dict[str, Any]] = []
    for i in range(count):
        node_id = f"n{i}"
        source = draw(st.sampled_from(["p", *(f"n{k}" for k in range(i))]))
        entry: dict[str, Any] = {"id": node_id, "type": "Math", "config": {"op": "add"}}
        entry["retry"] = {"attempts": draw(st.integers(1, 2)), "backoff_s": 0.5}
        if draw(st.booleans()) and draw(st.booleans()):
            entry["blocking"] = False
        nodes.append(entry)
        edges.append(
            {"from": f"{source}.{'value' if source == 'p' else 'result'}", "to": f"{node_id}.a"}
        )
        if draw(st.booleans()):
            edges.append(
                {"from": f"{node_id}.result", "to": f"{node_id}.b", "feedback": True, "initial": 0}
            )
        else:
            edges.append(
                {"from": f"{source}.{'value' if source == 'p' else 'result'}", "to": f"{node_id}.b"}
            )
    policy = {
        "on_error": draw(st.sampled_from(["stop", "continue", "pause"])),
        "max_inflight_nonblocking": draw(st.integers(1, 3)),
    }
    outcomes = {
        (f"n{i}", it): draw(st.sampled_from(OUTCOMES)) for i in range(count) for it in range(items)
    }
    workflow = {"name": "loop", "nodes": nodes, "edges": edges, "loops": {"p": policy}}
    return workflow, outcomes


@settings(max_examples=150, deadline=None)
@given(loops(), st.randoms(use_true_random=False))
def test_a_random_loop_always_ends_paced_and_bounded(
    graph: tuple[dict[str, Any], dict[tuple[str, int], str]], rng: random.Random
) -> None:
    workflow, outcomes = graph
    plan = plan_of(json.dumps(workflow))
    behaviour = {
        node: (lambda d: _behaviour(outcomes[(d.node.id, d.iteration)])(d))
        for node in plan.loops["p"].nodes
        if node != "p"
    }
    driver = Driver(plan, behaviour=behaviour)
    driver.start()
    limit = workflow["loops"]["p"]["max_inflight_nonblocking"]
    detached = set(plan.loops["p"].detached)
    for _ in range(1_000):
        if driver.ended() is not None:
            break
        if not driver.inflight and driver.scheduler.next_deadline() is None:
            driver.send(LoopControl("p", DesiredLoopState.RUNNING))  # paused by on_error
            continue
        driver.step(rng.choice)
        in_flight = [d for d in driver.inflight.values() if d.node.id in detached]
        assert len(in_flight) <= limit
    ended = driver.ended()
    assert ended is not None and ended.status in ("completed", "failed")

    finished: set[str] = set()
    terminal: dict[str, int] = {}
    for command in driver.all_commands():
        if isinstance(command, Dispatch):
            prefix = command.run_id.rsplit(":", 1)[0]
            upstream = {f"{prefix}:{n}" for n in command.node.upstream}
            assert upstream <= finished, f"{command.run_id} dispatched before {upstream - finished}"
            if command.kind == "produce" and command.iteration:
                # The producer never runs ahead: every blocking run before it ended.
                before = {f"j:p:{command.iteration - 1}:{n}" for n in plan.loops["p"].blocking}
                assert before <= set(terminal), f"{command.run_id} ran ahead of {before}"
        elif isinstance(command, RunChanged) and command.status in TERMINAL:
            terminal[command.run_id] = terminal.get(command.run_id, 0) + 1
            if command.status == "succeeded":
                finished.add(command.run_id)
    assert all(n == 1 for n in terminal.values())
    exhausted = {f"j:p:{i}:p" for i in range(workflow["nodes"][0]["config"]["stop"] + 1)}
    dispatched = {d.run_id for d in of_type(driver.all_commands(), Dispatch)}
    assert dispatched - exhausted <= set(terminal)
    assert driver.inflight == {}
