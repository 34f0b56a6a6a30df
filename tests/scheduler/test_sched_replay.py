"""Decisions are pure: replaying a job's events gives the same commands, step by step."""

from __future__ import annotations

import random

import pytest

from orchestrator.planner import Plan
from orchestrator.results import RunResult
from orchestrator.scheduler import CancelJob, Dispatch, Event, LoopControl, Scheduler
from orchestrator.states import DesiredLoopState
from tests.scheduler.scheduler_harness import (
    Driver,
    loop_statuses,
    norm,
    of_type,
    plan_of,
    statuses,
)

BUSY = """
    name: busy
    nodes:
      - {id: seed, type: Input, config: {name: seed, default: 1}}
      - {id: base, type: Math, config: {op: mul}}
      - {id: ticks, type: Range, config: {stop: 6}}
      - id: shaky
        type: Flaky
        config: {fail_times: 1, fail_on: [4]}
        retry: {attempts: 2, backoff_s: 0.5}
        timeout_s: 30
      - {id: scaled, type: Math, config: {op: add}}
      - {id: acc, type: Math, config: {op: add}}
      - {id: push, type: QueueWriter, config: {queue: scaled}}
      - {id: out, type: Output, config: {name: sums}}
      - {id: reader, type: QueueReader, config: {queue: scaled}}
      - {id: label, type: Format, config: {template: "v={value}"}}
      - {id: side, type: Preview}
      - {id: labels, type: Output, config: {name: labels}}
      - {id: words, type: Items, config: {items: [x, y, z]}}
      - {id: fail, type: Flaky, config: {fail_on: [y]}}
    edges:
      - {from: seed.value, to: base.a}
      - {from: seed.value, to: base.b}
      - {from: ticks.value, to: shaky.value}
      - {from: shaky.value, to: scaled.a}
      - {from: base.result, to: scaled.b}
      - {from: scaled.result, to: acc.a}
      - {from: acc.result, to: acc.b, feedback: true, initial: 0}
      - {from: scaled.result, to: push.value}
      - {from: acc.result, to: out.value}
      - {from: reader.item, to: label.value}
      - {from: label.text, to: side.value}
      - {from: label.text, to: labels.value}
      - {from: words.item, to: fail.value}
    loops:
      ticks: {on_error: continue, max_inflight_nonblocking: 1}
      words: {on_error: stop}
"""


def _replay(plan: Plan, log: list[tuple[Event, float]]) -> list[list[str]]:
    scheduler = Scheduler("j", plan, {"seed": 3})
    return [[norm(c) for c in scheduler.handle(event, now)] for event, now in log]


def _scripted(seed: int) -> Driver:
    """A whole job answered in a shuffled order, with a pause and a resume on the way."""
    rng = random.Random(seed)
    driver = Driver(plan_of(BUSY), {"seed": 3})
    driver.start()
    control = [DesiredLoopState.PAUSED, DesiredLoopState.RUNNING]
    for _ in range(2_000):
        if driver.ended() is not None:
            return driver
        commands = driver.all_commands()
        ticks_runs = [d for d in of_type(commands, Dispatch) if d.loop == "ticks"]
        ticks = loop_statuses(commands, "ticks")
        pause_now = control[:1] == [DesiredLoopState.PAUSED] and len(ticks_runs) >= 9
        if pause_now or (control and ticks[-1:] == ["paused"]):
            driver.send(LoopControl("ticks", control.pop(0)))
        else:
            driver.now += rng.choice([0.0, 0.25, 1.0])
            driver.step(rng.choice)
    raise AssertionError("the scripted job did not end")


@pytest.mark.parametrize("seed", range(5))
def test_replaying_the_event_log_gives_the_same_commands_step_by_step(seed: int) -> None:
    driver = _scripted(seed)
    recorded = [[norm(c) for c in step] for step in driver.steps]

    replayed = _replay(plan_of(BUSY), driver.log)

    assert len(replayed) == len(recorded)
    for step, (event, now) in enumerate(driver.log):
        assert replayed[step] == recorded[step], f"step {step}: {event!r} at {now}"
    kinds = {type(event).__name__ for event, _ in driver.log}
    assert kinds == {"Start", "RunResult", "Tick", "LoopControl"}


@pytest.mark.parametrize("seed", range(3))
def test_the_scripted_job_exercises_retries_a_failure_queues_and_control(seed: int) -> None:
    driver = _scripted(seed)
    commands = driver.all_commands()

    assert ("j:ticks:0:shaky", "retrying") in statuses(commands)
    assert "paused" in loop_statuses(commands, "ticks")
    ended = driver.ended()
    assert ended is not None and ended.status == "failed"
    assert loop_statuses(commands, "words")[-1] == "failed"
    # The reader loop took every message the writer pushed, and acked each once.
    pushed = driver.queues["scaled"]
    assert sorted(ended.outputs["labels"]) == sorted(f"v={v}" for v in pushed)
    assert len(driver.acks()) == len({a.delivery for a in driver.acks()}) == len(pushed)
    # The running sum adds each pushed value (4 always fails, so never gets there).
    sums = [sum(pushed[: i + 1]) for i in range(len(pushed))]
    assert ended.outputs["sums"] == sums
    assert 4 + 9 not in pushed


def test_a_cancelled_job_replays_the_same_way() -> None:
    driver = Driver(plan_of(BUSY), {"seed": 3})
    driver.start()
    for _ in range(12):
        driver.answer(next(iter(driver.inflight)))
    driver.send(CancelJob("enough"), at=5.0)
    driver.send(RunResult("j:main:0:base", 1, "succeeded", {"result": 9}))

    replayed = _replay(plan_of(BUSY), driver.log)

    assert replayed == [[norm(c) for c in step] for step in driver.steps]


def test_two_schedulers_fed_the_same_events_decide_the_same_dispatches() -> None:
    plan = plan_of(BUSY)
    driver = _scripted(3)
    first = Scheduler("j", plan, {"seed": 3})
    second = Scheduler("j", plan, {"seed": 3})

    for event, now in driver.log:
        a = first.handle(event, now)
        b = second.handle(event, now)
        assert [d for d in a if isinstance(d, Dispatch)] == [
            d for d in b if isinstance(d, Dispatch)
        ]
        assert a == b
