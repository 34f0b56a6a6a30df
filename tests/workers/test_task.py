"""The node task on a real store and broker, called the way a Celery worker calls it.

A first delivery is claimed only if its run outlasts ``claim_after_s``; a
delivery that may have run before (redelivered, or resent by the coordinator)
is claimed first, and skipped when the store shows its run finished. The
worker never writes a run's end: its result waits on the job's results queue
until the coordinator has journaled it and recorded the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

from nodes import Node, NodeConfig, Ports, RunContext
from nodes.library import builtin_registry
from nodes.registry import NodeRegistry
from orchestrator.channels import Channels
from orchestrator.results import RunError, RunResult
from orchestrator.settings import Settings
from orchestrator.store.base import RunRecord
from tests.support.services import redis_database
from workers.runtime import WorkerRuntime
from workers.task import execute

pytestmark = pytest.mark.services


class Counted(Node):
    """Counts its runs, waiting ``seconds`` first."""

    runs: ClassVar[list[str]] = []

    class Config(NodeConfig):
        seconds: float = 0.0

    class Inputs(Ports):
        value: int = 0

    class Outputs(Ports):
        value: int

    config: Config

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        Counted.runs.append(ctx.run_id)
        time.sleep(self.config.seconds)
        return self.Outputs(value=inputs.value + 1)


class Failing(Node):
    """Fails in a function of its own."""

    class Inputs(Ports):
        value: int = 0

    class Outputs(Ports):
        value: int

    def run(self, inputs: Inputs, ctx: RunContext) -> Outputs:
        return self.Outputs(value=_refuse(inputs.value))


def _refuse(value: int) -> int:
    raise ValueError(f"refusing {value}")


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def runtime(broker: str, tmp_path: Path) -> Iterator[WorkerRuntime]:
    registry: NodeRegistry = builtin_registry()
    registry.register(Counted)
    registry.register(Failing)
    Counted.runs.clear()
    settings = Settings(home=tmp_path, broker_url=broker, claim_after_s=0.1)
    rt = WorkerRuntime(settings, registry, "worker-1")
    coordinator = Channels(broker)  # follows job1, so its results queue exists
    coordinator.consume(lambda job, deliveries: None, lambda body: None)
    coordinator.follow("job1")
    yield rt
    coordinator.forget("job1", delete=True)
    coordinator.close()
    rt.close()


def request(node: str = "n", seconds: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": f"job1:main:0:{node}",
        "job_id": "job1",
        "loop": "main",
        "iteration": 0,
        "node_id": node,
        "type_name": "Counted",
        "config": {"seconds": seconds},
        "inputs": {"value": 1},
        **fields,
    }


def reported(rt: WorkerRuntime) -> list[dict[str, Any]]:
    entries = redis.Redis.from_url(rt.settings.broker_url).xrange(rt.channels.results_queue("job1"))
    return [json.loads(fields[b"b"]) for _, fields in entries]


def recorded_by_the_coordinator(rt: WorkerRuntime, node: str = "n") -> RunRecord:
    result = next(r for r in reported(rt) if r["run_id"] == f"job1:main:0:{node}")
    run = RunRecord(
        run_id=result["run_id"],
        job_id="job1",
        loop="main",
        iteration=0,
        node_id=node,
        type_name="Counted",
        status=result["status"],
        outputs=result["outputs"],
        worker=result["worker"],
        finished_at=result["finished_at"],
    )
    rt.store.record_runs([run])
    return run


def test_a_quick_run_is_reported_and_left_for_the_coordinator_to_record(
    runtime: WorkerRuntime,
) -> None:
    assert execute(runtime, request()) == "succeeded"
    time.sleep(0.3)  # past claim_after_s: no claim may land after the end
    assert runtime.store.get_run("job1:main:0:n") is None  # never written by the worker
    [result] = reported(runtime)
    assert result["run_id"] == "job1:main:0:n" and result["status"] == "succeeded"
    assert result["outputs"] == {"value": 2} and result["worker"] == "worker-1"


def test_a_run_still_going_after_the_delay_is_recorded_running(runtime: WorkerRuntime) -> None:
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            run = runtime.store.get_run("job1:main:0:slow")
            if run is not None and (not seen or seen[-1] != run.status):
                seen.append(run.status)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert execute(runtime, request("slow", seconds=0.6)) == "succeeded"
        time.sleep(0.05)
    finally:
        done.set()
        watcher.join()
    assert seen == ["running"]  # claimed; the end is the coordinator's to record
    assert [r["status"] for r in reported(runtime)] == ["succeeded"]


@pytest.mark.parametrize("how", ["redelivered", "resent"])
def test_a_delivery_that_may_have_run_is_skipped_when_its_run_finished(
    runtime: WorkerRuntime, how: str
) -> None:
    assert execute(runtime, request()) == "succeeded"
    recorded_by_the_coordinator(runtime)
    again = (
        execute(runtime, request(), redelivered=True)
        if how == "redelivered"
        else execute(runtime, request(resent=True))
    )
    assert again == "duplicate: already finished, result sent again"
    assert Counted.runs == ["job1:main:0:n"]  # not run twice
    first, second = reported(runtime)  # the recorded result, sent again
    assert second["status"] == "succeeded" and second["outputs"] == first["outputs"]


def test_a_plain_duplicate_runs_again_but_its_first_record_stands(runtime: WorkerRuntime) -> None:
    # Only a delivery marked as possibly seen is claimed first; an unmarked copy
    # (a publish retried by the broker client, say) runs and reports again, and
    # the coordinator keeps the first end (its scheduler ignores the second).
    assert execute(runtime, request()) == "succeeded"
    recorded_by_the_coordinator(runtime)
    first = runtime.store.get_run("job1:main:0:n")
    assert execute(runtime, request()) == "succeeded"
    assert len(Counted.runs) == 2 and len(reported(runtime)) == 2
    assert runtime.store.get_run("job1:main:0:n") == first


def test_a_redelivered_run_the_store_does_not_show_finished_runs_again(
    runtime: WorkerRuntime,
) -> None:
    # Its first run may have died with its worker: the claim is taken, it runs.
    assert execute(runtime, request(), redelivered=True) == "succeeded"
    assert Counted.runs == ["job1:main:0:n"]
    run = runtime.store.get_run("job1:main:0:n")
    assert run is not None and run.status == "running" and run.worker == "worker-1"
    assert [r["status"] for r in reported(runtime)] == ["succeeded"]


def test_a_result_for_a_job_that_ended_leaves_nothing_on_the_broker(
    runtime: WorkerRuntime,
) -> None:
    ended = {**request(), "run_id": "gone:main:0:n", "job_id": "gone"}
    assert execute(runtime, ended) == "succeeded"
    broker = redis.Redis.from_url(runtime.settings.broker_url)
    assert not broker.exists(runtime.channels.results_queue("gone"))


def test_a_failed_run_is_reported_with_its_error_and_the_nodes_traceback(
    runtime: WorkerRuntime,
) -> None:
    assert execute(runtime, request("bad", type_name="Failing", config={}, attempts=2)) == "failed"

    [result] = reported(runtime)
    assert RunResult.from_json(result).error == RunError(
        "ValueError", "refusing 1", True, result["error"]["traceback"]
    )
    trace = result["error"]["traceback"]
    assert ", in _refuse\n" in trace and trace.rstrip().endswith("ValueError: refusing 1")


def test_a_redelivered_failed_run_sends_its_recorded_error_and_traceback_again(
    runtime: WorkerRuntime,
) -> None:
    trace = 'Traceback (most recent call last):\n  File "n.py", line 2, in run\nOSError: gone\n'
    failed = RunRecord(
        run_id="job1:main:0:n",
        job_id="job1",
        loop="main",
        iteration=0,
        node_id="n",
        type_name="Counted",
        status="failed",
        error="OSError: gone",
        traceback=trace,
    )
    runtime.store.record_runs([failed])

    again = execute(runtime, request(), redelivered=True)

    assert again == "duplicate: already finished, result sent again"
    assert Counted.runs == []
    [result] = reported(runtime)
    assert RunResult.from_json(result).error == RunError("OSError", "gone", False, trace)
