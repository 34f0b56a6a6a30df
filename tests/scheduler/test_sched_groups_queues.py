"""Groups run one stage per item; queue readers poll, end with their writers, and ack."""

from __future__ import annotations

from orchestrator.results import RunResult
from orchestrator.scheduler import Ack, Dispatch, JobChanged, RunChanged
from tests.scheduler.scheduler_harness import Driver, briefs, dispatched, of_type, plan_of, statuses


def _group(max_parallel: int | None = None) -> str:
    limit = "" if max_parallel is None else f"max_parallel: {max_parallel}"
    return f"""
        name: squares
        nodes:
          - {{id: items, type: Constant, config: {{value: [1, 2, 3]}}}}
          - id: g
            type: Group
            config:
              {limit}
              workflow:
                name: square
                nodes:
                  - {{id: item, type: Input, config: {{name: item}}}}
                  - {{id: sq, type: Math, config: {{op: mul}}}}
                  - {{id: result, type: Output, config: {{name: result}}}}
                edges:
                  - {{from: item.value, to: sq.a}}
                  - {{from: item.value, to: sq.b}}
                  - {{from: sq.result, to: result.value}}
          - {{id: out, type: Output, config: {{name: squares}}}}
        edges:
          - {{from: items.value, to: g.items}}
          - {{from: g.results, to: out.value}}
    """


def test_a_group_runs_one_stage_per_item_without_a_dispatch_of_its_own() -> None:
    driver = Driver(plan_of(_group()))
    driver.start()

    started = driver.succeed("j:main:0:items", {"value": [1, 2, 3]})

    assert briefs(started) == [
        ("run", "j:main:0:items", "succeeded"),
        ("run", "j:main:0:g.0.item", "succeeded"),
        ("dispatch", "j:main:0:g.0.sq", 1, {"a": 1, "b": 1}),
        ("run", "j:main:0:g.1.item", "succeeded"),
        ("dispatch", "j:main:0:g.1.sq", 1, {"a": 2, "b": 2}),
        ("run", "j:main:0:g.2.item", "succeeded"),
        ("dispatch", "j:main:0:g.2.sq", 1, {"a": 3, "b": 3}),
    ]
    assert {d.node_id for d in of_type(started, Dispatch)} == {"g.0.sq", "g.1.sq", "g.2.sq"}


def test_group_results_keep_the_input_order_when_items_finish_out_of_order() -> None:
    driver = Driver(plan_of(_group()))
    driver.start()
    driver.succeed("j:main:0:items", {"value": [1, 2, 3]})

    assert statuses(driver.succeed("j:main:0:g.2.sq", {"result": 9})) == [
        ("j:main:0:g.2.sq", "succeeded"),
        ("j:main:0:g.2.result", "succeeded"),
    ]
    driver.succeed("j:main:0:g.0.sq", {"result": 1})
    last = driver.succeed("j:main:0:g.1.sq", {"result": 4})

    group = [c for c in of_type(last, RunChanged) if c.run_id == "j:main:0:g"]
    assert [(c.status, c.outputs) for c in group] == [("succeeded", {"results": [1, 4, 9]})]
    assert last[-1] == JobChanged("completed", {"squares": [1, 4, 9]})


def test_max_parallel_limits_how_many_item_stages_run_at_once() -> None:
    driver = Driver(plan_of(_group(max_parallel=2)))
    driver.start()

    started = driver.succeed("j:main:0:items", {"value": [1, 2, 3]})

    assert dispatched(started) == ["j:main:0:g.0.sq", "j:main:0:g.1.sq"]
    assert dispatched(driver.succeed("j:main:0:g.1.sq", {"result": 4})) == ["j:main:0:g.2.sq"]
    assert dispatched(driver.succeed("j:main:0:g.2.sq", {"result": 9})) == []
    assert driver.succeed("j:main:0:g.0.sq", {"result": 1})[-1] == JobChanged(
        "completed", {"squares": [1, 4, 9]}
    )


def test_a_failed_item_fails_the_group_once_every_item_ended() -> None:
    driver = Driver(plan_of(_group()))
    driver.start()
    driver.succeed("j:main:0:items", {"value": [1, 2, 3]})

    failed = driver.fail("j:main:0:g.1.sq", "E: item", retryable=False)

    assert ("j:main:0:g", "failed") not in statuses(failed)
    driver.succeed("j:main:0:g.0.sq", {"result": 1})
    last = driver.succeed("j:main:0:g.2.sq", {"result": 9})
    group = [c for c in of_type(last, RunChanged) if c.run_id == "j:main:0:g"]
    assert [(c.status, c.error) for c in group] == [("failed", "GroupError: item 1 failed")]
    assert of_type(last, JobChanged)[0].status == "failed"


def test_an_empty_list_gives_an_empty_result_at_once() -> None:
    driver = Driver(plan_of(_group()))
    driver.start()

    last = driver.succeed("j:main:0:items", {"value": []})

    assert last[-1] == JobChanged("completed", {"squares": []})


PIPE = """
    name: pipe
    nodes:
      - {id: ticks, type: Range, config: {stop: 2}}
      - {id: push, type: QueueWriter, config: {queue: q}}
      - {id: reader, type: QueueReader, config: {queue: q}}
      - {id: use, type: Format, config: {template: "got {value}"}}
      - {id: out, type: Output, config: {name: got}}
    edges:
      - {from: ticks.value, to: push.value}
      - {from: reader.item, to: use.value}
      - {from: use.text, to: out.value}
"""


def test_an_idle_reader_is_polled_again_with_the_same_attempt() -> None:
    driver = Driver(plan_of(PIPE))
    first = driver.start()
    poll = next(d for d in of_type(first, Dispatch) if d.loop == "reader")
    assert (poll.kind, poll.writers_done) == ("produce", False)

    again = driver.send(RunResult("j:reader:0:reader", 1, "succeeded", idle=True))

    assert of_type(again, Dispatch) == [poll]


def test_a_reader_learns_that_every_writer_ended_and_its_exhaustion_ends_the_loop() -> None:
    driver = Driver(plan_of(PIPE))
    driver.start()
    for run_id in ["j:ticks:0:ticks", "j:ticks:0:push", "j:ticks:1:ticks", "j:ticks:1:push"]:
        driver.answer(run_id)

    writers_ended = driver.answer("j:ticks:2:ticks")
    assert briefs(writers_ended) == [("loop", "ticks", "completed")]
    polls = [driver.answer("j:reader:0:reader")]  # message 0 was waiting
    polls.append(driver.answer("j:reader:0:use"))
    polls.append(driver.answer("j:reader:1:reader"))
    polls.append(driver.answer("j:reader:1:use"))

    produces = [d for step in polls for d in of_type(step, Dispatch) if d.kind == "produce"]
    assert [(d.run_id, d.cursor, d.writers_done) for d in produces] == [
        ("j:reader:1:reader", 1, True),
        ("j:reader:2:reader", 2, True),
    ]
    assert briefs(driver.answer("j:reader:2:reader")) == [
        ("loop", "reader", "completed"),
        ("job", "completed"),
    ]
    assert driver.ended() == JobChanged("completed", {"got": ["got 0", "got 1"]})


def test_a_delivery_is_acknowledged_when_the_iteration_that_consumed_it_ended() -> None:
    driver = Driver(plan_of(PIPE))
    driver.start()
    driver.answer("j:ticks:0:ticks")
    driver.answer("j:ticks:0:push")
    delivered = RunResult(
        "j:reader:0:reader", 1, "succeeded", {"item": 0}, cursor=1, delivery="m-0"
    )

    assert of_type(driver.send(delivered), Ack) == []
    ended = driver.answer("j:reader:0:use")

    assert briefs(ended) == [
        ("run", "j:reader:0:use", "succeeded"),
        ("run", "j:reader:0:out", "succeeded"),
        ("ack", "reader", "m-0"),
        ("loop", "reader", "running"),
        ("produce", "j:reader:1:reader", 1, 1),
    ]
    assert of_type(ended, Ack) == [Ack("reader", "reader", "m-0")]


def test_a_failed_iteration_still_acknowledges_its_delivery() -> None:
    driver = Driver(plan_of(PIPE, loops={"reader": {"on_error": "continue"}}))
    driver.start()
    driver.send(
        RunResult("j:reader:0:reader", 1, "succeeded", {"item": 0}, cursor=1, delivery="m-0")
    )

    failed = driver.fail("j:reader:0:use", "E: bad", retryable=False)

    assert of_type(failed, Ack) == [Ack("reader", "reader", "m-0")]


def test_readers_and_writers_run_to_the_end_with_every_message_acknowledged_once() -> None:
    driver = Driver(plan_of(PIPE))

    ended = driver.run()

    assert ended == JobChanged("completed", {"got": ["got 0", "got 1"]})
    assert [a.delivery for a in driver.acks()] == ["q#0", "q#1"]
