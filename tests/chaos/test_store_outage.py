"""PostgreSQL connections terminated mid-job (what a database restart does to them): no
process exits, nothing is lost or recorded twice (issue 13; DESIGN section 5)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.chaos.jobs import assert_once_each, await_iterations, full_log, running_sum
from tests.support.cluster import Cluster
from tests.support.services import PG_ADMIN

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]


def _terminate_backends(database_url: str) -> int:
    """End every server connection to the test's own database, as a restart would."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def test_postgres_connections_terminated_three_times_mid_job_lose_and_double_nothing(
    chaos_cluster: Cluster, tmp_path: Path
) -> None:
    items, sink = 30, tmp_path / "sums.jsonl"
    with chaos_cluster.client() as client:
        job = client.submit(running_sum(sink, items, nap=0.05))
        for quarter in (1, 2, 3):
            await_iterations(client, job, items * quarter // 4)
            assert _terminate_backends(chaos_cluster.database_url) > 0
        result = job.wait(timeout=60)
        assert_once_each(chaos_cluster, client, job, result, items, sink)
    for name, process in chaos_cluster.processes.items():
        assert process.poll() is None, f"{name} exited: {chaos_cluster.log(name)}"
    assert "the driver failed" not in full_log(chaos_cluster, "coordinator")
