"""Connections of the SQL store: URL normalisation, SQLite pragmas, migrations.

SQLite files run in WAL mode with ``synchronous=NORMAL`` (readers never block
the one writer; a commit does not wait for fsync of the WAL) and a busy
timeout, so threads and processes sharing a file wait for the write lock
instead of failing at once. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError

from orchestrator.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer before "database is locked"."""

MIGRATIONS = "orchestrator.store:migrations"
"""Alembic ``script_location``: the migrations ship inside the package."""

# Alembic keeps the running migration in module globals (``alembic.context``),
# so two threads of one process must not migrate at the same time.
_ALEMBIC_LOCK = threading.Lock()


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file at ``path``."""
    return f"sqlite:///{path}"


def normalize_url(url: str) -> URL:
    """Parse a database URL, routing PostgreSQL to psycopg 3.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``;
    SQLite and explicit drivers are kept as they are.

    Raises:
        StoreError: The URL cannot be parsed, names an in-memory SQLite database
            (each connection would see its own empty database), or a database
            other than SQLite and PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"database URL {url!r} is not valid: {exc}; expected sqlite:///path/to/segue.db "
            "or postgresql://user@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file::memory:"):
            raise StoreError(
                f"database URL {url!r} names an in-memory SQLite database, which each "
                "connection sees empty; use a file (sqlite:///path/segue.db) or MemoryStore"
            )
    elif backend != "postgresql":
        raise StoreError(
            f"database URL {url!r} uses {backend!r}; the store supports sqlite and postgresql"
        )
    return parsed


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` (see :func:`normalize_url`), safe to share between threads."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None  # checked by normalize_url
        if not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(parsed, pool_size=8, max_overflow=16)
    _ping_when_idle(engine)
    return engine


IDLE_PING_S = 1.0
"""A pooled PostgreSQL connection idle this long is pinged before it is used again."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection that sat idle before handing it out.

    ``pool_pre_ping`` pings on every checkout: one more round trip per store
    call, as much as the call itself under load. A connection in steady use
    is alive; one that idled (the server may have restarted or a proxy cut
    it) is pinged, and a dead one replaced. A connection that dies while in
    use fails its call, which idempotent calls retry.
    """

    def on_checkin(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def on_checkout(dbapi: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except Exception as exc:  # any failure: the pool connects afresh
            raise DisconnectionError(f"a pooled connection was dead: {exc}") from exc

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def alembic_config(engine: Engine | None = None) -> Config:
    """A programmatic Alembic config (no ``alembic.ini``) for the packaged migrations.

    With ``engine``, ``env.py`` migrates through it; without, through
    ``sqlalchemy.url`` set by the caller.
    """
    from alembic.config import Config  # imported late: alembic is slow to import

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision``; a no-op when already there.

    Concurrent upgrades of one database are serialised (a lock between the
    threads of a process; between processes, an immediate write transaction on
    SQLite and an advisory lock on PostgreSQL), so stores opened at once on a
    fresh database all succeed.
    """
    from alembic import command
    from alembic.util import CommandError

    with _ALEMBIC_LOCK:
        try:
            command.upgrade(alembic_config(engine), revision)
        except CommandError as exc:
            where = engine.url.render_as_string(hide_password=True)
            raise StoreError(
                f"cannot migrate the store at {where} to {revision!r}: {exc} (was the database "
                "migrated by a newer Segue? Upgrade Segue, or point it at another database)"
            ) from exc


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
