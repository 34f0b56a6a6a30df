"""Clusters on a Redis broker of their own, which the chaos tests stop, kill and cut."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer
from tests.support.services import postgres_database


@pytest.fixture(scope="package")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with AOF on a free loopback port, for the chaos tests to break."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def chaos_cluster(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Cluster]:
    """A coordinator and a thread worker on :func:`redis_server` and a database of their own."""
    with postgres_database() as database:
        cluster = Cluster(tmp_path_factory.mktemp("chaos"), redis_server.url, database)
        try:
            cluster.start("coordinator")
            cluster.start("thread")
            cluster.wait_ready("coordinator", "thread")
            yield cluster
        finally:
            cluster.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test on the shared chaos cluster shows what its processes last wrote."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    cluster = getattr(item, "funcargs", {}).get("chaos_cluster")
    if report.when == "call" and report.failed and isinstance(cluster, Cluster):
        for name, process in cluster.processes.items():
            state = "running" if process.poll() is None else f"exited {process.returncode}"
            report.sections.append((f"chaos cluster: {name} ({state})", cluster.log(name)))
