"""A worker cut off from the broker while the coordinator is not: the result it could not
publish is kept and arrives when the broker is back (issue 13; DESIGN section 10).

The worker reaches Redis through a loopback proxy the test cuts for 20 s while
the worker's node runs; the coordinator reaches Redis directly all along.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Workflow
from tests.chaos.jobs import full_log
from tests.support.cluster import Cluster
from tests.support.proxy import TcpProxy
from tests.support.redis_server import RedisServer
from tests.support.services import postgres_database

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]
CUT_S = 20.0


@pytest.fixture
def split_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, TcpProxy]]:
    """A coordinator on a broker of its own, and a thread worker on it through a
    proxy (the package's broker serves other clusters' workers, which would take
    the job's runs)."""
    redis_server = RedisServer(tmp_path_factory.mktemp("split-redis"))
    redis_server.start()
    proxy = TcpProxy(redis_server.port)
    root = tmp_path_factory.mktemp("split")
    try:
        with postgres_database() as database:
            direct = Cluster(root, redis_server.url, database)
            through = Cluster(root, f"redis://127.0.0.1:{proxy.port}/0", database)
            try:
                direct.start("coordinator")
                through.start("thread")
                direct.wait_ready("coordinator")
                through.wait_ready("thread")
                yield direct, proxy
            finally:
                through.stop()
                direct.stop()
    finally:
        proxy.close()
        redis_server.stop()
    assert through.processes["thread"].returncode == 0, through.log("thread")


def test_a_result_finished_while_its_worker_is_cut_off_arrives_once_the_broker_is_back(
    split_cluster: tuple[Cluster, TcpProxy], tmp_path: Path
) -> None:
    cluster, proxy = split_cluster
    flow = Workflow.loads(
        """
        name: partition
        nodes:
          - {id: one, type: Constant, config: {value: 7}}
          - {id: nap, type: Sleep, config: {seconds: 2}}
          - {id: out, type: Output, config: {name: out}}
        edges:
          - {from: one.value, to: nap.value}
          - {from: nap.value, to: out.value}
        """
    )
    with cluster.client() as client:
        job = client.submit(flow)
        deadline = time.monotonic() + 30
        while f"Sleep[{job.id}:main:0:nap] received" not in full_log(cluster, "thread"):
            assert time.monotonic() < deadline, "the worker never received the nap"
            time.sleep(0.02)
        proxy.cut()  # the nap ends, and its result finds no broker
        time.sleep(CUT_S)
        assert client.runs(job.id) and job.id  # the coordinator still answers meanwhile
        proxy.mend()
        mended = time.monotonic()
        result = job.wait(timeout=60)
        arrived_s = time.monotonic() - mended

    assert result.status == "completed", result.error
    assert result.outputs == {"out": 7}
    worker = full_log(cluster, "thread")
    runs = re.findall(
        rf"Task segue\.node\.Sleep\[({job.id}:[^\]]+)\] succeeded .*: 'succeeded'", worker
    )
    assert runs == [f"{job.id}:main:0:nap"], worker  # it ran once: its kept result was used
    assert f"while sending the result of run {job.id}:main:0:nap" in worker, worker
    assert "Unrecoverable error" not in worker, worker
    print(f"the job finished {arrived_s:.1f} s after the worker's broker came back")
