"""Issue 13, part 3, on Celery: a prefork child that dies under a node run fails that
run (its retry policy applies), and the worker and its pool serve on.

The node types that misbehave reach the cluster's processes the way a user's
own do: a package publishing them under the ``segue.nodes`` entry point group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Client, Workflow
from tests.support import robust_nodes
from tests.support.cluster import Cluster
from tests.support.services import postgres_database, redis_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]


def _plugin(where: Path) -> Path:
    """A folder holding an installed package's metadata that publishes the robust nodes."""
    info = where / "segue_robust_nodes-1.0.dist-info"
    info.mkdir(parents=True)
    metadata = "Metadata-Version: 2.1\nName: segue-robust-nodes\nVersion: 1.0\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(
        "[segue.nodes]\nrobust = tests.support.robust_nodes:register\n"
    )
    return where


@pytest.fixture(scope="module")
def crash_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator and a prefork (process pool) worker of two children."""
    root = tmp_path_factory.mktemp("lost")
    plugin = _plugin(root / "plugin")
    with postgres_database() as database, redis_database() as broker:
        cluster = Cluster(root, broker, database, {"PYTHONPATH": f"{ROOT}:{plugin}"})
        try:
            cluster.start("coordinator")
            cluster.start("process")
            cluster.wait_ready("coordinator", "process")
            yield cluster
        finally:
            cluster.stop()


def _client(cluster: Cluster) -> Client:
    return Client(settings=cluster.settings(), registry=robust_nodes.registry())


def _misbehaving(how: str, count: int = 6, bad: int = 2, **options: Any) -> Workflow:
    return robust_nodes.misbehaving("process", how, count, bad, **options)


@pytest.mark.parametrize(("how", "signal_name"), [("segv", "SIGSEGV"), ("kill", "SIGKILL")])
def test_a_child_that_dies_fails_its_run_and_the_worker_serves_on(
    crash_cluster: Cluster, how: str, signal_name: str
) -> None:
    with _client(crash_cluster) as client:
        result = client.submit(_misbehaving(how, bad=1)).wait(timeout=60)
        runs = {r.iteration: r for r in client.runs(result.job, "ticks") if r.node == "odd"}
        again = client.submit(_misbehaving("exit", count=3, bad=-1)).wait(timeout=60)

    assert runs[1].status == "failed", runs[1]
    assert runs[1].error is not None and "ChildProcessDied" in runs[1].error
    assert signal_name in runs[1].error, runs[1].error
    assert {i: r.status for i, r in runs.items() if i != 1} == dict.fromkeys(
        (0, 2, 3, 4, 5), "succeeded"
    )
    assert sorted(result.outputs["values"]) == [0, 2, 3, 4, 5]
    assert again.status == "completed", again.error  # the pool has its children back
    assert sorted(again.outputs["values"]) == [0, 1, 2]
    assert crash_cluster.processes["process"].poll() is None


def test_a_run_whose_child_died_runs_again_by_its_retry_policy(
    crash_cluster: Cluster, tmp_path: Path
) -> None:
    workflow = _misbehaving(
        "segv", count=4, bad=1, config={"once": str(tmp_path / "once")}, retry={"attempts": 2}
    )
    with _client(crash_cluster) as client:
        result = client.submit(workflow).wait(timeout=60)
        runs = {r.iteration: r for r in client.runs(result.job, "ticks") if r.node == "odd"}

    assert result.status == "completed", result.error
    assert sorted(result.outputs["values"]) == [0, 1, 2, 3]
    assert runs[1].attempt == 2 and runs[1].status == "succeeded"
