"""Node health (DESIGN section 3, States): one pure function over recorded runs."""

from __future__ import annotations

from typing import NamedTuple

from orchestrator.health import WINDOW, node_health


class Row(NamedTuple):
    node: str
    status: str
    attempt: int = 1
    finished_at: float | None = None


def rows(*outcomes: tuple[str, str, int]) -> list[Row]:
    """Rows finished one second apart, in the order given."""
    return [
        Row(node, status, attempt, float(at)) for at, (node, status, attempt) in enumerate(outcomes)
    ]


def test_no_runs_no_nodes() -> None:
    assert node_health([]) == {}


def test_the_last_outcome_failing_makes_a_node_failing_even_at_a_low_error_rate() -> None:
    report = node_health(rows(*[("n", "succeeded", 1)] * 3, ("n", "failed", 1)))

    assert report["n"] == {"health": "failing", "succeeded": 3, "failed": 1, "error_rate": 0.25}


def test_an_error_rate_over_half_is_failing_after_a_success_and_half_is_not() -> None:
    over = node_health(rows(*[("n", "failed", 1)] * 3, ("n", "succeeded", 1)))
    half = node_health(rows(*[("n", "failed", 1)] * 2, *[("n", "succeeded", 1)] * 2))

    assert (over["n"]["health"], over["n"]["error_rate"]) == ("failing", 0.75)
    assert (half["n"]["health"], half["n"]["error_rate"]) == ("healthy", 0.5)


def test_earlier_attempts_of_a_row_count_as_failures_before_its_outcome() -> None:
    # attempt 3 succeeded: attempts 1 and 2 failed, then one success
    report = node_health(rows(("n", "succeeded", 3)))

    assert report["n"] == {"health": "failing", "succeeded": 1, "failed": 2, "error_rate": 0.667}


def test_a_run_waiting_for_its_retry_makes_the_node_retrying() -> None:
    report = node_health(rows(("n", "succeeded", 1), ("n", "retrying", 1)))

    assert report["n"]["health"] == "retrying"
    assert (report["n"]["succeeded"], report["n"]["failed"]) == (1, 1)


def test_runs_in_flight_count_only_their_failed_attempts() -> None:
    report = node_health(
        [Row("n", "succeeded", 1, 1.0), Row("n", "running", 2, None), Row("n", "queued", 1, None)]
    )

    assert report["n"] == {"health": "failing", "succeeded": 1, "failed": 1, "error_rate": 0.5}


def test_the_error_rate_looks_at_the_last_window_of_outcomes_in_finish_order() -> None:
    old_failures = [("n", "failed", 1)] * 50
    recent_successes = [("n", "succeeded", 1)] * WINDOW
    # given out of order: health sorts by finish time
    report = node_health(list(reversed(rows(*old_failures, *recent_successes))))

    assert report["n"] == {
        "health": "healthy",
        "succeeded": WINDOW,
        "failed": 50,
        "error_rate": 0.0,
    }


def test_nodes_are_reported_apart_group_children_by_their_dotted_id() -> None:
    report = node_health(rows(("g", "succeeded", 1), ("g.inner", "failed", 1)))

    assert (report["g"]["health"], report["g.inner"]["health"]) == ("healthy", "failing")
