"""Fixtures of the store tests: one ``store`` per implementation.

PostgreSQL runs against 127.0.0.1:5432 (user ``postgres``, trust auth): each
test session creates its own database ``segue_test_<hex>`` and drops it at the
end. Without a reachable server the PostgreSQL cases are skipped, or fail when
the ``CI`` environment variable is set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from orchestrator.store import MemoryStore, SqlStore, Store
from orchestrator.store.sql.connection import sqlite_url

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
TABLES = "workflows, jobs, loops, node_runs, events, cache_entries, processes, run_logs"

IMPLEMENTATIONS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.services),
]


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = (
            f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); run scripts/ensure-services.sh"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[], str]]:
    """Makes throwaway PostgreSQL databases (URLs); all are dropped at the end."""
    admin = _admin()
    names: list[str] = []

    def create() -> str:
        name = f"segue_test_{secrets.token_hex(6)}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return PG_URL.format(name=name)

    try:
        yield create
    finally:
        for name in names:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


@pytest.fixture(scope="session")
def postgres_store(postgres_database: Callable[[], str]) -> Iterator[SqlStore]:
    """One migrated store on this session's PostgreSQL database."""
    store = SqlStore.open(postgres_database())
    try:
        yield store
    finally:
        store.close()


def _sql_store(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> SqlStore:
    if kind == "sqlite":
        return SqlStore.open(sqlite_url(tmp_path / "segue.db"))
    store: SqlStore = request.getfixturevalue("postgres_store")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {TABLES} RESTART IDENTITY")
    return store


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each implementation."""
    kind: str = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    store = _sql_store(request, kind, tmp_path)
    yield store
    if kind == "sqlite":
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """An empty SQL store on each dialect."""
    store = _sql_store(request, request.param, tmp_path)
    yield store
    if request.param == "sqlite":
        store.close()
