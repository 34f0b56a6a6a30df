"""Alembic environment of the state store, driven programmatically.

:func:`orchestrator.store.sql.connection.upgrade` passes its engine in
``config.attributes["engine"]``; without one (the ``alembic`` command line with
``-x url=...`` or ``sqlalchemy.url``) an engine is made from the URL.

The whole upgrade runs in one transaction that first takes a lock, so two
processes migrating the same database at once run one after the other: on
SQLite ``BEGIN IMMEDIATE`` (the write lock), on PostgreSQL a transaction-scoped
advisory lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, text

from orchestrator.store.sql.connection import make_engine
from orchestrator.store.sql.models import Base

# An arbitrary constant: the advisory-lock id Segue's migrations serialise on.
_PG_LOCK_ID = 0x5E6E_0001

target_metadata = Base.metadata


def _engine() -> tuple[Engine, bool]:
    config = context.config
    engine = config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine, False
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return make_engine(url), True


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # The pysqlite driver opens transactions lazily; take the write lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})


def run_migrations_online() -> None:
    """Migrate through a live connection, inside one locked transaction."""
    engine, owned = _engine()
    try:
        with engine.connect() as connection, connection.begin():
            _lock(connection)
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("Segue's migrations run online only (SqlStore.open or alembic upgrade)")
run_migrations_online()
