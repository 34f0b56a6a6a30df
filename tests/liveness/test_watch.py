"""The coordinator's watch (DESIGN section 3, item 12): a run no live worker holds,
while a worker idles on its queue, is sent again at once - and journaled; a run a
live worker holds is left alone however long it takes. Services-free: a driver
over a memory store with an executor that loses dispatches."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from nodes import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.coordinator.watch import Watch
from orchestrator.driver import Driver
from orchestrator.driver.executor import ResultSink
from orchestrator.engine.executor import LocalExecutor
from orchestrator.liveness import Announcer, Holding
from orchestrator.results import RunResult
from orchestrator.runner import NodeRunner
from orchestrator.scheduler.commands import Dispatch
from orchestrator.settings import Settings
from orchestrator.store import MemoryStore, ProcessRecord
from tests.driver.test_reconcile import FLOW, LosesFirstDispatch


def _worker(holds: tuple[str, ...], idle_since: float | None) -> ProcessRecord:
    now = time.time()
    return ProcessRecord(
        name="w-1@elsewhere:7",
        kind="worker",
        host="elsewhere",
        pid=7,
        started_at=now - 60,
        beat_at=now,
        holds=holds,
        queues=("thread",),
        idle_since=idle_since,
    )


def _driver(store: MemoryStore) -> tuple[Driver, list[LosesFirstDispatch]]:
    executors: list[LosesFirstDispatch] = []

    def factory(runner: NodeRunner, sink: ResultSink) -> LosesFirstDispatch:
        executors.append(LosesFirstDispatch(runner, sink))
        return executors[-1]

    return Driver(store, MemoryArtifactStore(), builtin_registry(), factory), executors


def test_a_run_lost_on_its_way_to_an_idle_worker_is_sent_again_and_journaled() -> None:
    store = MemoryStore()
    driver, executors = _driver(store)
    watch = Watch(driver, store, "coordinator-x@here:1", Settings())
    try:
        job_id = driver.submit(FLOW)
        lost = f"{job_id}:main:0:nap"
        time.sleep(1.2)  # the worker idled past the slack since the send
        assert executors[0].lost == [lost]
        store.announce(_worker((), idle_since=time.time() - 30))

        assert watch.check() == 1
        result = driver.wait(job_id, timeout=10)
    finally:
        driver.close()
    assert (result.status, result.outputs) == ("completed", {"out": 3})
    journal = [e for e in store.read_events(job_id) if e.kind == "input"]
    assert any("resend" in str(e.data) for e in journal)


def test_a_run_a_live_worker_holds_is_not_sent_again() -> None:
    store = MemoryStore()
    driver, _ = _driver(store)
    watch = Watch(driver, store, "coordinator-x@here:1", Settings())
    try:
        job_id = driver.submit(FLOW)
        time.sleep(1.2)
        store.announce(_worker((f"{job_id}:main:0:nap",), idle_since=None))

        assert watch.check() == 0
        assert not driver.job(job_id).done.is_set()
    finally:
        driver.close()


def test_the_watch_announces_its_coordinator_with_the_jobs_it_drives() -> None:
    store = MemoryStore()
    driver, _ = _driver(store)
    watch = Watch(driver, store, "coordinator-x@here:1", Settings())
    try:
        job_id = driver.submit(FLOW)
        watch.start()
        (me,) = store.list_processes()
        assert (me.name, me.kind, me.holds, me.state) == (
            "coordinator-x@here:1",
            "coordinator",
            (job_id,),
            "alive",
        )
        watch.stop()
        (me,) = store.list_processes()
        assert me.state == "stopped"
    finally:
        driver.close()


def test_a_worker_found_dead_is_marked_dead_so_its_run_sent_again_can_be_claimed() -> None:
    store = MemoryStore()
    driver, _ = _driver(store)
    watch = Watch(driver, store, "coordinator-x@here:1", Settings())
    try:
        job_id = driver.submit(FLOW)
        held = f"{job_id}:main:0:nap"
        time.sleep(1.2)
        silent = _worker((held,), idle_since=None)
        silent = replace(silent, beat_at=silent.beat_at - Settings().worker_timeout_s - 1)
        store.announce(silent)
        store.announce(replace(_worker((), idle_since=None), name="w-2@elsewhere:8"))

        watch.check()
        states = {p.name: p.state for p in store.list_processes()}
    finally:
        driver.close()
    assert states == {"w-1@elsewhere:7": "dead", "w-2@elsewhere:8": "alive"}


class ResultsOnTheBroker(LosesFirstDispatch):
    """An executor whose Sleep runs finish at once but whose results wait "on the
    broker" until the coordinator reads them (its ``catch_up``): a coordinator
    behind on its results, as under a burst of thousands."""

    def __init__(self, runner: NodeRunner, sink: ResultSink) -> None:
        super().__init__(runner, sink)
        self.waiting: list[RunResult] = []

    def submit(self, dispatches: Sequence[Dispatch]) -> list[RunResult]:
        rest = []
        for dispatch in dispatches:
            if dispatch.type_name == "Sleep":
                self.waiting.append(self.runner.run(dispatch))
            else:
                rest.append(dispatch)
        return LocalExecutor.submit(self, rest)


def test_a_run_whose_result_waits_on_the_broker_is_read_not_sent_again() -> None:
    store = MemoryStore()
    executors: list[ResultsOnTheBroker] = []

    def factory(runner: NodeRunner, sink: ResultSink) -> ResultsOnTheBroker:
        executors.append(ResultsOnTheBroker(runner, sink))
        return executors[-1]

    driver = Driver(store, MemoryArtifactStore(), builtin_registry(), factory)

    def catch_up() -> None:
        waiting, executors[0].waiting = executors[0].waiting, []
        driver.post_results(waiting)

    watch = Watch(driver, store, "coordinator-x@here:1", Settings(), catch_up=catch_up)
    try:
        job_id = driver.submit(FLOW)
        time.sleep(1.2)  # the worker ran the Sleep and idled past the slack since
        assert [r.run_id for r in executors[0].waiting] == [f"{job_id}:main:0:nap"]
        store.announce(_worker((), idle_since=time.time() - 30))

        assert watch.check() == 0
        result = driver.wait(job_id, timeout=10)
    finally:
        driver.close()
    assert (result.status, result.outputs) == ("completed", {"out": 3})
    journal = [e for e in store.read_events(job_id) if e.kind == "input"]
    assert not any("resend" in str(e.data) for e in journal)


def test_a_worker_that_took_runs_since_its_last_beat_is_not_idle_since_before() -> None:
    store = MemoryStore()
    clock = [100.0]
    took: list[float | None] = [None]
    announcer = Announcer(
        store,
        "w-2@here:2",
        "worker",
        lambda: Holding(queues=("thread",), active_at=took[0]),
        2.0,
        clock=lambda: clock[0],
    )
    announcer.beat()
    assert store.list_processes()[0].idle_since == 100.0
    clock[0], took[0] = 104.0, 103.5  # took and finished a run between two beats
    announcer.beat()
    assert store.list_processes()[0].idle_since == 103.5
    clock[0], took[0] = 106.0, None
    announcer.beat()
    assert store.list_processes()[0].idle_since == 103.5
