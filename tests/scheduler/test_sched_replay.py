"""Decisions are pure: replaying a job's events gives the same commands, step by step."""

from __future__ import annotations

import random

import pytest
from scheduler_harness import Driver, norm, plan_of

from orchestrator.planner import Plan
from orchestrator.runtime.states import DesiredLoopState
from orchestrator.scheduler import CancelJob, Dispatch, Event, LoopControl, RunFinished, Scheduler

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
    paused = False
    while driver.ended() is None:
        if not paused and driver.scheduler.state.loop("ticks").next_iteration == 3:
            driver.send(LoopControl("ticks", DesiredLoopState.PAUSED))
            paused = True
        elif paused and not driver.inflight:
            driver.send(LoopControl("ticks", DesiredLoopState.RUNNING))
            paused = None  # type: ignore[assignment]  # resumed for good
        if driver.inflight:
            driver.now += rng.choice([0.0, 0.25, 1.0])
            driver.answer(rng.choice(list(driver.inflight)))
        elif driver.ended() is None and driver.scheduler.next_deadline() is not None:
            driver.tick(max(driver.now, driver.scheduler.next_deadline() or 0.0))
    return driver


@pytest.mark.parametrize("seed", range(5))
def test_replaying_the_event_log_gives_the_same_commands_step_by_step(seed: int) -> None:
    driver = _scripted(seed)
    recorded = [[norm(c) for c in step] for step in driver.steps]

    replayed = _replay(plan_of(BUSY), driver.log)

    assert len(replayed) == len(recorded)
    for step, (event, (want, got)) in enumerate(
        zip(driver.log, zip(recorded, replayed, strict=True), strict=True)
    ):
        assert got == want, f"step {step}: {event[0]!r} at {event[1]}"


def test_the_scripted_job_exercises_retries_a_failure_queues_and_control() -> None:
    driver = _scripted(0)
    commands = driver.all_commands()
    texts = [norm(c) for c in commands]

    assert any("status='retrying'" in t for t in texts)
    assert any("status='paused'" in t for t in texts)
    assert driver.acks()
    ended = driver.ended()
    assert ended is not None and ended.status == "failed"
    assert ended.error == "node 'fail' failed in loop 'words' iteration 1: NodeError: 'y'"
    # 4 fails on every attempt, so iteration 4 is dropped: 1+3=4, 2+3=5, 3+3=6, 5+3=8.
    assert ended.outputs["sums"] == [4, 9, 15, 23]
    assert sorted(ended.outputs["labels"]) == ["v=4", "v=5", "v=6", "v=8"]


def test_a_cancelled_job_replays_the_same_way() -> None:
    driver = Driver(plan_of(BUSY), {"seed": 3})
    driver.start()
    for _ in range(12):
        driver.answer(next(iter(driver.inflight)))
    driver.send(CancelJob("enough"), at=5.0)
    driver.send(RunFinished("j:main:0:base", 1, "succeeded", {"result": 9}))

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
