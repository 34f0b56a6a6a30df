"""VRAM-aware admission on one GPU: a weighted FIFO semaphore that never over-commits."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.gpu.admission import Admission, TooLarge, VramSemaphore


def test_without_sharing_one_run_holds_the_device_at_a_time() -> None:
    admission = Admission(capacity_mb=8000, max_runs=1)
    assert admission.ask(1, 100) == [1]
    assert admission.ask(2, 100) == []
    assert admission.release(1) == [2]


def test_small_runs_are_packed_while_their_declared_memory_fits() -> None:
    admission = Admission(capacity_mb=1000, max_runs=8)
    assert [admission.ask(t, 250) for t in range(5)] == [[0], [1], [2], [3], []]
    assert admission.used_mb == 1000
    assert admission.release(2) == [4]


def test_a_large_run_at_the_head_is_not_overtaken_by_small_ones() -> None:
    admission = Admission(capacity_mb=1000, max_runs=8)
    admission.ask(1, 600)
    assert admission.ask(2, 800) == []  # waits for the 600 to end
    assert admission.ask(3, 100) == []  # fits, but must not overtake the 800
    assert admission.release(1) == [2, 3]


def test_a_run_that_declares_nothing_has_the_device_to_itself() -> None:
    admission = Admission(capacity_mb=1000, max_runs=8)
    assert admission.ask(1, 0) == [1]
    assert admission.ask(2, 10) == []
    assert admission.release(1) == [2]


def test_a_run_larger_than_the_device_is_refused_naming_both_sizes() -> None:
    with pytest.raises(TooLarge, match=r"vram_mb 2000.*offers 1000 MiB"):
        Admission(capacity_mb=1000, max_runs=4).ask(1, 2000)


def test_a_waiting_run_that_gives_up_leaves_the_line() -> None:
    admission = Admission(capacity_mb=1000, max_runs=4)
    admission.ask(1, 900)
    admission.ask(2, 900)
    admission.ask(3, 50)
    assert admission.release(2) == [3]  # 2 gave up waiting; 3 is now at the head and fits


events = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.integers(min_value=0, max_value=1200)),
        st.tuples(st.just("end"), st.integers(min_value=0, max_value=50)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=1000),
    max_runs=st.integers(min_value=1, max_value=8),
    script=events,
)
def test_admission_never_over_commits_and_admits_in_arrival_order(
    capacity: int, max_runs: int, script: list[tuple[str, int]]
) -> None:
    admission = Admission(capacity_mb=capacity, max_runs=max_runs)
    order: list[int] = []
    asked: list[int] = []
    for ticket, (action, value) in enumerate(script):
        if action == "ask":
            try:
                order += admission.ask(ticket, value)
            except TooLarge:
                assert value > capacity
                continue
            asked.append(ticket)
        elif admission.held:
            held = sorted(admission.held)
            order += admission.release(held[value % len(held)])
        assert admission.used_mb <= capacity
        assert len(admission.held) <= max_runs
        # Nothing waits while the head of the line would fit.
        if admission.waiting and len(admission.held) < max_runs:
            assert admission.used_mb + admission.waiting[0][1] > capacity
    assert order == asked[: len(order)]  # strict FIFO: admitted in the order asked


def test_threads_sharing_a_device_never_exceed_its_memory() -> None:
    semaphore = VramSemaphore(capacity_mb=1000, max_runs=8)
    lock = threading.Lock()
    in_use = [0]
    peak = [0]

    def run(mb: int) -> None:
        with semaphore.hold(mb):
            with lock:
                in_use[0] += mb
                peak[0] = max(peak[0], in_use[0])
            time.sleep(0.005)
            with lock:
                in_use[0] -= mb

    threads = [threading.Thread(target=run, args=(100 + 150 * (i % 5),)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert 700 <= peak[0] <= 1000  # packed, and never over
    assert semaphore.admission.held == {} and not semaphore.admission.waiting
