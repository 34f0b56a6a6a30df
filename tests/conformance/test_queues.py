"""DESIGN 3.5: queues connect loops; every reader loop gets every message, readers of
one group share them, and a job-scoped reader ends once its writers ended and the
queue is drained."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(60)


def _writer_and_readers(
    executor: Harness,
    count: int,
    groups: tuple[str | None, ...],
    interval_s: float = 0,
    reader_sleep_s: float = 0,
) -> Workflow:
    """One loop writing ``range(count)`` into queue ``q``; one reader loop per group entry."""
    b = executor.builder("queue-fanout")
    ticks = b.node("ticks", "Range", config={"stop": count, "interval_s": interval_s})
    push = b.node("push", "QueueWriter", config={"queue": "q"})
    b.edge(ticks["value"], push["value"])
    for k, group in enumerate(groups):
        config: dict[str, str] = {"queue": "q"}
        if group is not None:
            config["group"] = group
        reader = b.node(f"reader{k}", "QueueReader", config=config)
        nap = b.node(f"nap{k}", "Sleep", config={"seconds": reader_sleep_s})
        out = b.node(f"out{k}", "Output", config={"name": f"got{k}"})
        b.edge(reader["item"], nap["value"]).edge(nap["value"], out["value"])
    return b.build()


def test_every_reader_loop_receives_every_message(executor: Harness) -> None:
    result = executor.run(_writer_and_readers(executor, 8, (None, None)))

    assert result.status == "completed"
    assert sorted(result.outputs["got0"]) == list(range(8))
    assert sorted(result.outputs["got1"]) == list(range(8))
    for name in ("ticks", "reader0", "reader1"):
        assert result.loops[name].status == "completed", name
    assert result.loops["reader0"].iterations == result.loops["reader1"].iterations == 8


def test_readers_of_one_group_share_the_messages_each_delivered_once(executor: Harness) -> None:
    result = executor.run(
        _writer_and_readers(executor, 20, ("workers", "workers"), reader_sleep_s=0.01)
    )

    assert result.status == "completed"
    got0, got1 = result.outputs["got0"], result.outputs["got1"]
    assert sorted(got0 + got1) == list(range(20))
    assert set(got0).isdisjoint(got1)
    loops = result.loops
    assert loops["reader0"].iterations + loops["reader1"].iterations == 20
    assert loops["reader0"].status == loops["reader1"].status == "completed"


def test_a_group_shares_messages_while_another_reader_still_gets_them_all(
    executor: Harness,
) -> None:
    result = executor.run(_writer_and_readers(executor, 10, ("pair", "pair", None)))

    assert result.status == "completed"
    outputs = result.outputs
    assert sorted(outputs["got0"] + outputs["got1"]) == list(range(10))
    assert sorted(outputs["got2"]) == list(range(10))


def test_a_reader_loop_ends_only_after_its_writers_ended_and_the_queue_drained(
    executor: Harness,
) -> None:
    # The writer is slow, so the reader finds the queue empty many times before
    # the writer ends; it must keep waiting, not end early.
    job = executor.submit(_writer_and_readers(executor, 4, (None,), interval_s=0.1))

    events = list(job.events(timeout=30))
    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert sorted(result.outputs["got0"]) == [0, 1, 2, 3]
    ended = {
        e.loop: position
        for position, e in enumerate(events)
        if e.kind == "loop" and e.status == "completed"
    }
    assert ended["ticks"] < ended["reader0"]
    assert result.loops["reader0"].iterations == 4


def test_a_reader_whose_writer_fails_still_ends_with_what_was_written(
    executor: Harness,
) -> None:
    workflow = executor.load(
        """
        name: writer-fails
        nodes:
          - {id: ticks, type: Items, config: {items: [1, 2, 3]}}
          - {id: check, type: Flaky, config: {fail_on: [3]}}
          - {id: push, type: QueueWriter, config: {queue: q}}
          - {id: pull, type: QueueReader, config: {queue: q}}
          - {id: out, type: Output, config: {name: got}}
        edges:
          - {from: ticks.item, to: check.value}
          - {from: check.value, to: push.value}
          - {from: pull.item, to: out.value}
        """
    )
    result = executor.run(workflow)

    assert result.status == "failed"
    assert result.loops["ticks"].status == "failed"
    assert result.loops["pull"].status == "completed"
    assert sorted(result.outputs["got"]) == [1, 2]


def test_a_reader_waits_for_every_writer_of_its_queue(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: two-writers
        nodes:
          - {id: fast, type: Range, config: {start: 100, stop: 102}}
          - {id: fast_push, type: QueueWriter, config: {queue: q}}
          - {id: slow, type: Range, config: {stop: 4, interval_s: 0.05}}
          - {id: slow_push, type: QueueWriter, config: {queue: q}}
          - {id: pull, type: QueueReader, config: {queue: q}}
          - {id: out, type: Output, config: {name: got}}
        edges:
          - {from: fast.value, to: fast_push.value}
          - {from: slow.value, to: slow_push.value}
          - {from: pull.item, to: out.value}
        """
    )
    result = executor.run(workflow)

    assert result.status == "completed"
    assert sorted(result.outputs["got"]) == [0, 1, 2, 3, 100, 101]
    assert result.loops["pull"].iterations == 6


def test_messages_wait_for_a_paused_reader_and_none_is_lost_or_repeated(
    executor: Harness,
) -> None:
    job = executor.submit(_writer_and_readers(executor, 6, (None,), interval_s=0.05))
    executor.await_run(job, "reader0")
    executor.client.pause_loop(job.id, "reader0")
    executor.await_loop(job, "reader0", "paused")
    # The writer goes on and ends while the reader is paused.
    executor.await_loop(job, "ticks", "completed")
    assert executor.loop_info(job, "reader0").status == "paused"

    executor.client.resume_loop(job.id, "reader0")
    result = job.wait(timeout=30)
    assert result.status == "completed"
    assert sorted(result.outputs["got0"]) == list(range(6))
    assert result.loops["reader0"].iterations == 6


def test_a_global_queue_carries_messages_between_separately_submitted_jobs(
    executor: Harness,
) -> None:
    consumer = executor.load(
        """
        name: consumer
        nodes:
          - id: pull
            type: QueueReader
            config: {queue: pipeline, scope: global, idle_timeout_s: 0.5}
          - {id: out, type: Output, config: {name: got}}
        edges:
          - {from: pull.item, to: out.value}
        """
    )
    producer = executor.load(
        """
        name: producer
        nodes:
          - {id: ticks, type: Items, config: {items: [a, b, c]}}
          - {id: push, type: QueueWriter, config: {queue: pipeline, scope: global}}
        edges:
          - {from: ticks.item, to: push.value}
        """
    )
    reading = executor.submit(consumer)
    assert executor.run(producer).status == "completed"

    result = reading.wait(timeout=30)
    assert result.status == "completed"
    assert sorted(result.outputs["got"]) == ["a", "b", "c"]
