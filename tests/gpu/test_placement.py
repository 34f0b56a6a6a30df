"""Where the coordinator sends a GPU run: to ``gpu`` when every live GPU fits
it, to the memory queue of the smallest live GPU that fits it when only some
do, and nowhere (held, sent once one fits) when none does - never to a GPU too
small for it, so nothing bounces between workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.celery.placement import GpuPlacement, Offer, fit_queue, offers, place
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch, Scheduler, Start
from orchestrator.settings import Settings
from orchestrator.store.base import ProcessRecord
from tests.scheduler.scheduler_harness import plan_of
from tests.support.services import redis_database

NOW = 1000.0
SMALL = Offer(frozenset({"gpu", "gpu.3072mb"}), 3072)
LARGE = Offer(frozenset({"gpu", "gpu.7168mb"}), 7168)


def worker(name: str, usable_mb: int | None, beat_at: float = NOW, **info: Any) -> ProcessRecord:
    gpu = {"device": "cpu"} if usable_mb is None else {"index": 0, "usable_mb": usable_mb}
    queues = ("gpu",) if usable_mb is None else ("gpu", fit_queue("gpu", usable_mb))
    return ProcessRecord(
        name=name,
        kind="worker",
        host="h",
        pid=1,
        started_at=0.0,
        beat_at=beat_at,
        queues=queues,
        info={"gpu": gpu, **info},
    )


@pytest.mark.parametrize(
    ("vram_mb", "live", "queue"),
    [
        (2048, [SMALL, LARGE], "gpu"),  # every live GPU fits it
        (5000, [SMALL, LARGE], "gpu.7168mb"),  # only the larger one does
        (7168, [SMALL, LARGE], "gpu.7168mb"),
        (9000, [SMALL, LARGE], None),  # none does: held
        (9000, [], None),  # no GPU worker at all: held until one comes
        (0, [SMALL], "gpu"),  # declares nothing: a whole device, any device
        (9000, [SMALL, Offer(frozenset({"gpu"}), None)], "gpu"),  # served on the CPU: any
        (5000, [SMALL, Offer(frozenset({"big"}), 30000)], None),  # serves another queue
    ],
)
def test_a_gpu_run_is_placed_on_the_queue_of_the_gpus_that_fit_it(
    vram_mb: int, live: list[Offer], queue: str | None
) -> None:
    assert place("gpu", vram_mb, live) == queue


def test_offers_come_from_live_worker_heartbeats_only() -> None:
    processes = [
        worker("small", 3072),
        worker("gone", 30000, beat_at=NOW - 60),
        worker("cpu", None),
        ProcessRecord(name="engine", kind="engine", host="h", pid=2, started_at=0, beat_at=NOW),
    ]
    assert offers(processes, NOW, 15.0) == [
        Offer(frozenset({"gpu", "gpu.3072mb"}), 3072),
        Offer(frozenset({"gpu"}), None),
    ]


def test_heartbeats_are_read_at_most_once_a_second() -> None:
    reads: list[float] = []
    now = [NOW]

    def processes() -> list[ProcessRecord]:
        reads.append(now[0])
        return [worker("large", 7168, beat_at=now[0])]

    placement = GpuPlacement(processes, 15.0, clock=lambda: now[0])
    assert placement.queue("gpu", 5000) == "gpu"
    now[0] += 0.5
    assert placement.queue("gpu", 9000) is None
    now[0] += 0.6
    placement.queue("gpu", 9000)
    assert reads == [NOW, NOW + 1.1]
    assert placement.queue("gpu", 0) == "gpu"  # nothing declared: nothing read


def _gpu_dispatch(vram_mb: int) -> Dispatch:
    plan = plan_of(
        f"""
        name: big
        nodes:
          - {{id: mm, type: TorchMatmul, config: {{size: 8}}, resources: {{vram_mb: {vram_mb}}}}}
        edges: []
        """
    )
    (dispatch,) = [
        c for c in Scheduler("job", plan, {}).handle(Start(), 0.0) if isinstance(c, Dispatch)
    ]
    return dispatch


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.services
def test_the_coordinator_holds_a_run_no_gpu_fits_and_sends_it_to_one_that_joins() -> None:
    live: list[ProcessRecord] = [worker("small", 3072, beat_at=time.time())]
    with redis_database() as url:
        app = make_celery(Settings(broker_url=url))
        placement = GpuPlacement(lambda: list(live), 15.0, max_age_s=0.0)
        runner = NodeRunner(builtin_registry(), MemoryArtifactStore())
        executor = CeleryExecutor(app, runner, lambda _: None, placement)
        broker = redis.Redis.from_url(url)
        dispatch = _gpu_dispatch(5000)
        try:
            assert executor.submit([dispatch]) == []
            time.sleep(1.5)  # a check or more went by: nothing fits, nothing is sent
            assert broker.llen("gpu") == 0 and broker.llen("gpu.7168mb") == 0
            live.append(worker("large", 7168, beat_at=time.time()))
            _eventually(lambda: broker.llen("gpu.7168mb") == 1)
        finally:
            executor.close()
            app.close()
        assert broker.llen("gpu") == 0 and broker.llen("gpu.3072mb") == 0
        (raw,) = broker.lrange("gpu.7168mb", 0, -1)
        assert json.loads(raw)["headers"]["id"] == dispatch.run_id
