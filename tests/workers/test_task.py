"""The node task on a real store and broker, called the way a Celery worker calls it.

A first delivery is claimed only if its run outlasts ``claim_after_s``; a
delivery that may have run before (redelivered, or resent by the coordinator)
is claimed first, and skipped when its run finished.
"""

from __future__ import annotations

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
from orchestrator.settings import Settings
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


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def runtime(broker: str, tmp_path: Path) -> Iterator[WorkerRuntime]:
    registry: NodeRegistry = builtin_registry()
    registry.register(Counted)
    Counted.runs.clear()
    settings = Settings(home=tmp_path, broker_url=broker, claim_after_s=0.1)
    rt = WorkerRuntime(settings, registry, "worker-1")
    redis.Redis.from_url(broker).delete(rt.channels.results)
    yield rt
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


def reported(rt: WorkerRuntime) -> list[Any]:
    return list(redis.Redis.from_url(rt.settings.broker_url).lrange(rt.channels.results, 0, -1))


def test_a_quick_run_is_recorded_once_when_it_ends(runtime: WorkerRuntime) -> None:
    assert execute(runtime, request()) == "succeeded"
    time.sleep(0.3)  # past claim_after_s: no claim may land after the end
    run = runtime.store.get_run("job1:main:0:n")
    assert run is not None and run.status == "succeeded" and run.outputs == {"value": 2}
    assert run.worker == "worker-1" and run.started_at is not None
    assert len(reported(runtime)) == 1


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
    assert seen == ["running", "succeeded"]


@pytest.mark.parametrize("how", ["redelivered", "resent"])
def test_a_delivery_that_may_have_run_is_skipped_when_its_run_finished(
    runtime: WorkerRuntime, how: str
) -> None:
    assert execute(runtime, request()) == "succeeded"
    again = (
        execute(runtime, request(), redelivered=True)
        if how == "redelivered"
        else execute(runtime, request(resent=True))
    )
    assert again == "duplicate: already finished, result sent again"
    assert Counted.runs == ["job1:main:0:n"]  # not run twice
    assert len(reported(runtime)) == 2  # the recorded result, sent again


def test_a_plain_duplicate_runs_again_but_its_first_record_stands(runtime: WorkerRuntime) -> None:
    # Only a delivery marked as possibly seen is claimed first; an unmarked copy
    # (a publish retried by the broker client, say) runs, and the first end wins.
    assert execute(runtime, request()) == "succeeded"
    first = runtime.store.get_run("job1:main:0:n")
    assert execute(runtime, request()) == "duplicate: already finished, result sent again"
    assert len(Counted.runs) == 2
    assert runtime.store.get_run("job1:main:0:n") == first
