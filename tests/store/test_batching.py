"""BatchingRecorder: buffered runs and events land in batches, and failures surface."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from orchestrator.store import (
    BatchingRecorder,
    EventRecord,
    MemoryStore,
    RecorderClosed,
    RunRecord,
    Store,
    StoreUnavailable,
)


def a_run(i: int, status: str = "succeeded", job_id: str = "j1") -> RunRecord:
    return RunRecord(
        run_id=f"{job_id}:main:{i}:a",
        job_id=job_id,
        loop="main",
        iteration=i,
        node_id="a",
        type_name="Add",
        status=status,
        outputs={"i": i},
    )


def an_event(i: int) -> EventRecord:
    return EventRecord(job_id="j1", kind="run", at=float(i), data={"i": i})


def _eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class FlakyStore(MemoryStore):
    """A memory store whose ``record_runs`` fails while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[int] = []

    def record_runs(self, runs: Sequence[RunRecord]) -> int:
        self.gate.wait()
        self.batches.append(len(runs))
        if self.failing.is_set():
            raise StoreUnavailable("recording runs in table node_runs: database is locked")
        return super().record_runs(runs)


def test_twenty_thousand_runs_from_four_threads_all_land_after_flush(store: Store) -> None:
    recorder = BatchingRecorder(store, max_batch=2000, max_delay_s=0.05)

    def submit(worker: int) -> None:
        for start in range(worker * 5000, (worker + 1) * 5000, 50):
            recorder.submit_runs(
                [a_run(i, "running") for i in range(start, start + 50)]
                + [a_run(i) for i in range(start, start + 50)]
            )
            recorder.submit_events([an_event(i) for i in range(start, start + 50)])

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.flush()
    runs = store.list_runs("j1")
    assert len(runs) == 20_000
    assert {r.status for r in runs} == {"succeeded"}
    assert len(store.read_events("j1", limit=30_000)) == 20_000
    recorder.close()


def test_flush_with_nothing_submitted_returns_at_once() -> None:
    with BatchingRecorder(MemoryStore(), max_delay_s=60.0) as recorder:
        recorder.flush()


def test_a_full_buffer_is_written_without_waiting_for_the_delay() -> None:
    store = FlakyStore()
    with BatchingRecorder(store, max_batch=100, max_delay_s=60.0) as recorder:
        recorder.submit_runs([a_run(i) for i in range(100)])
        assert _eventually(lambda: store.batches == [100])


def test_runs_of_one_submission_are_written_in_batches_of_max_batch() -> None:
    store = FlakyStore()
    with BatchingRecorder(store, max_batch=400, max_delay_s=60.0) as recorder:
        recorder.submit_runs([a_run(i) for i in range(1000)])
        recorder.flush()
    assert store.batches == [400, 400, 200]


def test_a_writer_error_is_raised_by_the_next_flush_and_later_batches_still_land() -> None:
    store = FlakyStore()
    recorder = BatchingRecorder(store, max_delay_s=0.001)
    store.failing.set()
    recorder.submit_runs([a_run(0)])
    with pytest.raises(StoreUnavailable, match="node_runs") as caught:
        recorder.flush()
    assert any("1 runs was not recorded" in note for note in caught.value.__notes__)
    store.failing.clear()
    recorder.submit_runs([a_run(1)])
    recorder.flush()
    assert [r.iteration for r in store.list_runs("j1")] == [1]
    recorder.close()


def test_a_writer_error_not_yet_flushed_is_raised_by_close() -> None:
    store = FlakyStore()
    recorder = BatchingRecorder(store, max_delay_s=0.001)
    store.failing.set()
    recorder.submit_runs([a_run(0)])
    with pytest.raises(StoreUnavailable):
        recorder.close()
    recorder.close()


def test_submitting_after_close_raises_recorder_closed() -> None:
    recorder = BatchingRecorder(MemoryStore())
    recorder.close()
    with pytest.raises(RecorderClosed, match="1 record"):
        recorder.submit_events([an_event(0)])


def test_submitters_wait_while_too_much_is_pending() -> None:
    store = FlakyStore()
    store.gate.clear()  # the writer blocks inside its first batch
    recorder = BatchingRecorder(store, max_batch=10, max_delay_s=0.0, max_pending=20)
    recorder.submit_runs([a_run(i) for i in range(10)])  # taken by the blocked writer
    assert _eventually(lambda: recorder.pending == 0)
    recorder.submit_runs([a_run(i) for i in range(10, 30)])  # fills the buffer
    done = threading.Event()

    def submit_more() -> None:
        recorder.submit_runs([a_run(30)])
        done.set()

    submitter = threading.Thread(target=submit_more)
    submitter.start()
    assert not done.wait(0.2)
    store.gate.set()
    assert done.wait(5.0)
    submitter.join()
    recorder.close()
    assert len(store.list_runs("j1")) == 31


def test_an_invalid_configuration_is_refused() -> None:
    kwargs: dict[str, Any] = {"max_batch": 0}
    with pytest.raises(ValueError, match="max_batch"):
        BatchingRecorder(MemoryStore(), **kwargs)


def test_when_written_is_called_once_what_was_submitted_before_it_is_in_the_store() -> None:
    store = FlakyStore()
    store.gate.clear()  # the writer waits inside record_runs
    seen: list[list[int]] = []
    with BatchingRecorder(store, max_delay_s=0.001) as recorder:
        recorder.submit_runs([a_run(0), a_run(1)])
        recorder.when_written(lambda: seen.append([r.iteration for r in store.list_runs("j1")]))
        time.sleep(0.05)
        assert seen == []  # not before the write
        store.gate.set()
        assert _eventually(lambda: seen == [[0, 1]])
        recorder.submit_runs([a_run(2)])
        recorder.flush()
        recorder.when_written(lambda: seen.append([]))  # nothing waiting: called at once
        assert seen == [[0, 1], []]


def test_when_written_is_not_called_for_a_batch_that_failed() -> None:
    store = FlakyStore()
    called: list[str] = []
    recorder = BatchingRecorder(store, max_delay_s=0.001)
    store.failing.set()
    recorder.submit_runs([a_run(0)])
    recorder.when_written(lambda: called.append("failed batch"))
    with pytest.raises(StoreUnavailable):
        recorder.flush()
    store.failing.clear()
    recorder.submit_runs([a_run(1)])
    recorder.when_written(lambda: called.append("later batch"))
    recorder.flush()
    assert _eventually(lambda: called == ["later batch"])
    recorder.close()
