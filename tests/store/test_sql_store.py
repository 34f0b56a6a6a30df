"""What only the SQL store does: URLs, SQLite settings, migrations, transient errors."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from orchestrator.store import (
    EventRecord,
    JobRecord,
    MemoryStore,
    RunRecord,
    SqlStore,
    StoreError,
    StoreUnavailable,
    open_store,
)
from orchestrator.store.sql import Retry, normalize_url
from orchestrator.store.sql import connection as engine_module
from orchestrator.store.sql.connection import (
    alembic_config,
    current_revision,
    make_engine,
    sqlite_url,
)
from orchestrator.store.sql.models import ACTIVE_RUNS, Base

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def a_job() -> JobRecord:
    return JobRecord(id="j1", workflow="wf", status="pending", spec={"nodes": []}, created_at=1.0)


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


def _dropped() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


# URLs and opening -------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@db:5432/segue", "postgresql+psycopg"),
        ("postgres://u@db/segue", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/segue", "postgresql+psycopg"),
        ("sqlite:////var/segue/segue.db", "sqlite"),
    ],
)
def test_postgresql_urls_are_routed_to_psycopg(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "nonsense"])
def test_in_memory_sqlite_and_other_databases_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="database URL"):
        normalize_url(url)


def test_open_store_without_a_url_creates_segue_db_under_home(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    store = open_store(None, home)
    try:
        assert isinstance(store, SqlStore)
        assert (home / "segue.db").is_file()
    finally:
        store.close()


def test_open_store_with_the_memory_url_gives_a_memory_store(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://", tmp_path), MemoryStore)
    assert not any(tmp_path.iterdir())


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = SqlStore.open(sqlite_url(tmp_path / "segue.db"))
    try:
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30_000}
    finally:
        store.close()


# migrations -------------------------------------------------------------------
def test_opening_the_same_sqlite_file_twice_is_a_no_op_upgrade(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "segue.db")
    first = SqlStore.open(url)
    first.create_job(a_job())
    first.close()
    second = SqlStore.open(url)
    try:
        assert current_revision(second.engine) == HEAD
        assert second.get_job("j1") == a_job()
    finally:
        second.close()


def test_threads_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "segue.db")
    _open_concurrently(lambda: SqlStore.open(url))


def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    _open_in_processes(sqlite_url(tmp_path / "segue.db"), tmp_path / "ready")


@pytest.mark.services
def test_processes_opening_a_fresh_postgresql_database_at_once_all_succeed(
    postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    _open_in_processes(postgres_database(), tmp_path / "ready")


_OPEN_WHEN_ALL_READY = """
import sys, time
from pathlib import Path
from orchestrator.store import SqlStore
url, folder, me, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(folder / me).touch()
while len(list(folder.iterdir())) < count:
    time.sleep(0.01)
SqlStore.open(url).close()
"""


def _open_in_processes(url: str, barrier: Path, count: int = 3) -> None:
    # Each process imports first and waits for the others, so the migrations overlap.
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_WHEN_ALL_READY, url, str(barrier), str(i), str(count)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    errors = [err for p in procs if (err := p.communicate(timeout=60)[1]) and p.returncode]
    assert errors == []
    engine = make_engine(url)
    try:
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def _open_concurrently(open_one: Callable[[], SqlStore]) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    stores: list[SqlStore] = []

    def open_it() -> None:
        start.wait()
        try:
            stores.append(open_one())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        assert current_revision(store.engine) == HEAD
        store.close()
    assert errors == []


def test_upgrading_a_store_of_revision_0002_keeps_its_runs_with_no_traceback(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path / "segue.db")
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "0002")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO node_runs (run_id, job_id, loop, iteration, node_id, type_name,"
                " status, attempt, error) VALUES ('j1:main:0:a', 'j1', 'main', 0, 'a', 'Add',"
                " 'failed', 1, 'NodeError: before tracebacks')"
            )
    finally:
        engine.dispose()

    store = SqlStore.open(url)
    try:
        assert current_revision(store.engine) == HEAD == "0006"
        run = store.get_run("j1:main:0:a")
        assert run is not None
        assert (run.status, run.error, run.traceback) == (
            "failed",
            "NodeError: before tracebacks",
            None,
        )
    finally:
        store.close()


def test_the_migrated_schema_matches_the_models(sql_store: SqlStore) -> None:
    with sql_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


# transient errors -------------------------------------------------------------
def _flaky(failures: list[Exception]) -> Callable[[], str]:
    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    return call


def test_a_locked_database_is_retried_until_it_frees() -> None:
    retry = Retry(attempts=3, wait_s=0.001)
    assert retry("saving loops", _flaky([_locked(), _locked()]), idempotent=False) == "ok"


def test_a_database_that_stays_locked_raises_store_unavailable_naming_the_operation() -> None:
    retry = Retry(attempts=3, wait_s=0.001)
    failures: list[Exception] = [_locked() for _ in range(5)]
    with pytest.raises(StoreUnavailable, match="claiming run 'j:main:0:a'") as caught:
        retry("claiming run 'j:main:0:a'", _flaky(failures))
    assert caught.value.retryable and len(failures) == 2


def test_a_dropped_connection_is_not_retried_for_a_call_unsafe_to_repeat() -> None:
    retry = Retry(attempts=3, wait_s=0.001)
    failures: list[Exception] = [_dropped(), _dropped()]
    with pytest.raises(StoreUnavailable, match="appending events"):
        retry("appending events", _flaky(failures), idempotent=False)
    assert len(failures) == 1
    assert retry("reading a job", _flaky([_dropped(), _dropped()])) == "ok"


def test_an_unreachable_database_raises_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match=re.escape("127.0.0.1:1")) as caught:
        SqlStore.open(
            "postgresql://postgres@127.0.0.1:1/segue", retry=Retry(attempts=2, wait_s=0.001)
        )
    assert caught.value.retryable


# PostgreSQL connections -------------------------------------------------------
@pytest.fixture
def pg_store(postgres_database: Callable[[], str]) -> Iterator[SqlStore]:
    store = SqlStore.open(postgres_database())
    yield store
    store.close()


def _kill_connections(store: SqlStore) -> int:
    """Terminate every server connection of ``store``'s database (as a restart would)."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (store.engine.url.database,),
        ).fetchall()
    return len(rows)


def _count_pings(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings = [0]
    ping = store.engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return ping(dbapi_connection)

    monkeypatch.setattr(store.engine.dialect, "do_ping", counted)
    return pings


@pytest.mark.services
def test_postgresql_connections_in_steady_use_are_not_pinged(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _count_pings(pg_store, monkeypatch)
    pg_store.create_job(a_job())
    for _ in range(20):
        assert pg_store.get_job("j1") is not None
    assert pings == [0]


@pytest.mark.services
def test_a_postgresql_connection_that_idled_is_pinged_and_replaced_when_dead(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _count_pings(pg_store, monkeypatch)
    pg_store.create_job(a_job())
    assert _kill_connections(pg_store) >= 1
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every pooled connection idled
    # Appending events is not safe to repeat, so it is never retried: it works
    # because the dead connection was found out before the statement was sent.
    pg_store.append_events([EventRecord(job_id="j1", kind="job", at=2.0, data={"n": 1})])
    assert [e.data for e in pg_store.read_events("j1")] == [{"n": 1}]
    assert pings[0] >= 1


@pytest.mark.services
def test_on_postgresql_a_call_safe_to_repeat_survives_a_dropped_connection(
    pg_store: SqlStore,
) -> None:
    pg_store.create_job(a_job())
    _kill_connections(pg_store)  # not idle long enough to be pinged: the call finds out
    assert pg_store.get_job("j1") is not None  # retried on a fresh connection


def _run(node: str, status: str = "succeeded") -> RunRecord:
    return RunRecord(
        run_id=f"j1:main:0:{node}",
        job_id="j1",
        loop="main",
        iteration=0,
        node_id=node,
        type_name="Math",
        status=status,
        attempt=1,
        outputs={"result": 1} if status == "succeeded" else None,
    )


@pytest.mark.services
def test_on_postgresql_threads_claiming_and_completing_at_once_keep_the_first_end(
    pg_store: SqlStore,
) -> None:
    def write(k: int) -> None:
        for i in range(20):
            assert pg_store.claim_run(_run(f"t{k}n{i}", "running"))
            assert pg_store.complete_run(_run(f"t{k}n{i}"))
            assert not pg_store.complete_run(_run(f"t{k}n{i}"))  # the first end won

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = pg_store.list_runs("j1")
    assert len(runs) == 80 and {r.status for r in runs} == {"succeeded"}


@pytest.mark.services
def test_on_postgresql_a_thread_whose_connection_dropped_writes_on_a_new_one(
    pg_store: SqlStore,
) -> None:
    assert pg_store.claim_run(_run("a", "running"))
    assert _kill_connections(pg_store) >= 1
    assert pg_store.complete_run(_run("a"))  # retried on a fresh connection
    stored = pg_store.get_run("j1:main:0:a")
    assert stored is not None and stored.status == "succeeded"


# the autoscalers' count -------------------------------------------------------
ACTIVE_RUNS_OF = (
    "SELECT count(*) FROM node_runs "
    "WHERE status IN ('queued', 'running') AND queue IN ('thread', 'asyncio')"
)
"""What the Helm chart's KEDA trigger asks for a pool serving ``thread`` and ``asyncio``
(tests/deploy/test_chart.py checks that the chart asks exactly this)."""


def test_the_active_runs_of_a_pool_are_counted_through_the_partial_index(
    sql_store: SqlStore,
) -> None:
    statuses = ["queued", "running", "succeeded", "failed", "retrying", "queued"]
    queues = ["thread", "asyncio", "thread", "thread", "thread", "gpu"]
    runs = [
        dataclasses.replace(_run(f"n{i}", status), queue=queue)
        for i, (status, queue) in enumerate(zip(statuses, queues, strict=True))
    ]
    sql_store.record_runs(runs)
    with sql_store.engine.connect() as conn:
        assert conn.exec_driver_sql(ACTIVE_RUNS_OF).scalar_one() == 2
        if conn.dialect.name == "postgresql":
            # An empty test table is cheaper to scan: ask how the count would run at scale.
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql(f"EXPLAIN {ACTIVE_RUNS_OF}").scalars().all()
        else:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {ACTIVE_RUNS_OF}")]
    assert any("ix_node_runs_active_queue" in line for line in plan), plan


def test_the_migrated_active_runs_index_is_partial_as_the_model_says(sql_store: SqlStore) -> None:
    # compare_metadata does not compare the WHERE of partial indexes: read it back.
    with sql_store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            found = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_node_runs_active_queue'"
            ).scalar_one()
        else:
            found = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_node_runs_active_queue'"
            ).scalar_one()
    where = found.split(" WHERE ", 1)[1]

    def terms(predicate: str) -> tuple[list[str], list[str]]:
        return re.findall(r"\b(status|queue)\b", predicate), re.findall(r"'(\w+)'", predicate)

    assert terms(where) == terms(ACTIVE_RUNS) == (["status"], ["queued", "running"]), found


def test_record_is_one_transaction_an_event_that_fails_takes_its_runs_back(
    sql_store: SqlStore,
) -> None:
    """The driver's journal entries and the runs decided on them land together or
    not at all: a run row is never in the store without the input that made it."""
    sql_store.create_job(a_job())
    run = RunRecord(
        run_id="j1:main:0:a",
        job_id="j1",
        loop="main",
        iteration=0,
        node_id="a",
        type_name="Add",
        status="succeeded",
        outputs={"v": 1},
    )
    unwritable = EventRecord(job_id="j1", kind="input", at=1.0, data={"x": object()})  # type: ignore[dict-item]
    with pytest.raises(Exception):  # noqa: B017 - whatever the encoder raises
        sql_store.record([run], [unwritable])
    assert sql_store.get_run("j1:main:0:a") is None
    assert sql_store.read_events("j1") == []


def test_outputs_that_json_cannot_hold_are_stored_as_valid_json(sql_store: SqlStore) -> None:
    # A node may return NaN or infinity (its Outputs ports allow them). JSON has no
    # such numbers, and PostgreSQL's json type refuses text that holds them: the
    # run is recorded with null in their place, on every SQL store alike.
    run = dataclasses.replace(
        _run("odd"), outputs={"mean": float("nan"), "top": float("inf"), "name": "ünï", "n": 2}
    )
    assert sql_store.record_runs([run]) == 1
    stored = sql_store.get_run(run.run_id)
    assert stored is not None
    assert stored.outputs == {"mean": None, "top": None, "name": "ünï", "n": 2}
