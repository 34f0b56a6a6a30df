"""Job outputs from the main stage and from loops; node health from run outcomes."""

from __future__ import annotations

from orchestrator.results import RunResult
from orchestrator.scheduler import JobChanged, LoopChanged
from tests.scheduler.scheduler_harness import Driver, of_type, plan_of

COLLECTED = """
    name: collected
    nodes:
      - {id: ticks, type: Range, config: {stop: 3}}
      - {id: slow, type: Sleep, config: {seconds: 0}, blocking: false}
      - {id: every, type: Output, config: {name: every}}
      - {id: last, type: Output, config: {name: last, collect: last}}
    edges:
      - {from: ticks.value, to: slow.value}
      - {from: slow.value, to: every.value}
      - {from: ticks.value, to: last.value}
"""


def test_a_loop_output_lists_values_in_iteration_order_even_when_they_finish_out_of_order() -> None:
    driver = Driver(plan_of(COLLECTED))
    driver.start()
    for i in range(3):
        driver.succeed(f"j:ticks:{i}:ticks", {"value": i * 10}, cursor=i + 1)
    driver.succeed("j:ticks:3:ticks", exhausted=True)

    driver.succeed("j:ticks:2:slow", {"value": 20})
    driver.succeed("j:ticks:0:slow", {"value": 0})
    last = driver.succeed("j:ticks:1:slow", {"value": 10})

    assert last[-1] == JobChanged("completed", {"every": [0, 10, 20], "last": 20})


def test_a_loop_with_no_iteration_gives_an_empty_list_and_no_last_value() -> None:
    driver = Driver(plan_of(COLLECTED.replace("stop: 3", "stop: 0")))

    assert driver.run() == JobChanged("completed", {"every": [], "last": None})


def test_a_detached_run_failing_after_its_iteration_ended_removes_that_iteration() -> None:
    driver = Driver(plan_of(COLLECTED, loops={"ticks": {"on_error": "continue"}}))
    driver.start()
    driver.succeed("j:ticks:0:ticks", {"value": 0}, cursor=1)
    driver.succeed("j:ticks:1:ticks", {"value": 10}, cursor=2)

    late = driver.fail("j:ticks:0:slow", "E: late", retryable=False)

    counts = [(c.iterations, c.failed_iterations) for c in of_type(late, LoopChanged)]
    assert counts == [(2, 1)]
    driver.succeed("j:ticks:1:slow", {"value": 10})
    driver.succeed("j:ticks:2:ticks", exhausted=True)
    assert driver.ended() == JobChanged("completed", {"every": [10], "last": 10})


HEALTH = """
    name: health
    nodes:
      - {id: ticks, type: Range, config: {stop: 10}}
      - {id: good, type: Sleep, config: {seconds: 0}}
      - {id: shaky, type: Sleep, config: {seconds: 0}, retry: {attempts: 2, backoff_s: 1}}
    edges:
      - {from: ticks.value, to: good.value}
      - {from: ticks.value, to: shaky.value}
    loops:
      ticks: {on_error: continue}
"""


def _health(driver: Driver) -> dict[str, str]:
    return {node: report["health"] for node, report in driver.health().items()}


def test_node_health_moves_between_healthy_retrying_and_failing() -> None:
    driver = Driver(plan_of(HEALTH))
    driver.start()
    driver.answer("j:ticks:0:ticks")
    driver.answer("j:ticks:0:good")
    assert _health(driver) == {"ticks": "healthy", "good": "healthy"}

    driver.fail("j:ticks:0:shaky")
    assert _health(driver)["shaky"] == "retrying"

    driver.tick(1.0)
    driver.fail("j:ticks:0:shaky")
    assert _health(driver)["shaky"] == "failing"

    driver.answer("j:ticks:1:ticks")
    driver.answer("j:ticks:1:good")
    driver.answer("j:ticks:1:shaky")
    report = driver.health()["shaky"]
    assert report == {"health": "failing", "succeeded": 1, "failed": 2, "error_rate": 0.667}

    driver.answer("j:ticks:2:ticks")
    driver.answer("j:ticks:2:good")
    driver.answer("j:ticks:2:shaky")
    assert _health(driver)["shaky"] == "healthy"  # the last run passed, half failed


def test_a_node_whose_error_rate_is_over_half_is_failing_even_after_a_success() -> None:
    driver = Driver(plan_of(HEALTH.replace("attempts: 2", "attempts: 1")))
    driver.start()
    for i in range(3):
        driver.answer(f"j:ticks:{i}:ticks")
        driver.answer(f"j:ticks:{i}:good")
        driver.fail(f"j:ticks:{i}:shaky", retryable=False)
    driver.answer("j:ticks:3:ticks")
    driver.answer("j:ticks:3:good")

    driver.send(RunResult("j:ticks:3:shaky", 1, "succeeded", {"value": 3}))

    report = driver.health()["shaky"]
    assert (report["health"], report["error_rate"]) == ("failing", 0.75)
    assert _health(driver)["good"] == "healthy"
