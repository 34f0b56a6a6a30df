"""PostgreSQL connections terminated mid-job (what a database restart does to them), and
the database refusing connections for 10 s (a restart): no process exits, nothing is lost
or recorded twice (issue 13; DESIGN section 5). Only the test's own database is touched."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.chaos.jobs import assert_once_each, await_iterations, full_log, running_sum
from tests.support.cluster import Cluster
from tests.support.services import PG_ADMIN

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(120)]


def _terminate_backends(database_url: str, admin: psycopg.Connection | None = None) -> int:
    """End every server connection to the test's own database, as a restart would."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as own:
        rows = (
            (admin or own)
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            .fetchall()
        )
    return len(rows)


def _refuse_connections(database_url: str, admin: psycopg.Connection, refuse: bool) -> None:
    name = sql.Identifier(database_url.rsplit("/", 1)[1])
    allow = sql.SQL("false" if refuse else "true")
    admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(name, allow))


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


def test_postgres_down_for_10_s_mid_job_loses_and_doubles_nothing(
    chaos_cluster: Cluster, tmp_path: Path
) -> None:
    items, sink = 24, tmp_path / "sums.jsonl"
    with chaos_cluster.client() as client:
        job = client.submit(running_sum(sink, items, nap=0.1))
        await_iterations(client, job, items // 3)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            _refuse_connections(chaos_cluster.database_url, admin, refuse=True)
            try:
                _terminate_backends(chaos_cluster.database_url, admin)
                time.sleep(10)
            finally:
                _refuse_connections(chaos_cluster.database_url, admin, refuse=False)
        result = job.wait(timeout=60)
        assert_once_each(chaos_cluster, client, job, result, items, sink)
    for name, process in chaos_cluster.processes.items():
        assert process.poll() is None, f"{name} exited: {chaos_cluster.log(name)}"
    coordinator = full_log(chaos_cluster, "coordinator")
    assert "the driver failed" not in coordinator and "Traceback" not in coordinator, coordinator
