"""How the SQL store talks to its database: a connection and a transaction per
call from the engine's pool, transient errors retried.

Every :class:`~orchestrator.store.sql.store.SqlStore` method is one call here:
:meth:`Gateway.write` for a change, :meth:`Gateway.read` for a query. On
PostgreSQL a call that runs one statement atomic on its own (``single``) uses
an autocommit connection: one round trip instead of ``BEGIN``, the statement
and ``COMMIT``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.store.errors import StoreError
from orchestrator.store.sql.retry import Retry

T = TypeVar("T")
Insert = sqlite.Insert | postgresql.Insert


class Gateway:
    """Runs the store's statements on ``engine``, in transactions, with retries.

    Safe to share between threads: every call runs in its own connection.

    Args:
        engine: A SQLite or PostgreSQL engine.
        retry: How transient errors are retried.

    Raises:
        StoreError: The engine's database is neither SQLite nor PostgreSQL.
    """

    def __init__(self, engine: Engine, retry: Retry | None = None) -> None:
        self.engine = engine
        self.retry = retry or Retry()
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"the store supports sqlite and postgresql, not {dialect!r}")
        self.dialect = dialect
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if dialect == "postgresql"
            else None
        )

    def insert(self, table: Table) -> Insert:
        """An ``INSERT`` into ``table`` in this dialect (it has ``ON CONFLICT``)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def write(
        self,
        what: str,
        fn: Callable[[Connection], T],
        *,
        idempotent: bool = True,
        single: bool = False,
    ) -> T:
        """Run ``fn`` in a transaction and return what it returns.

        Args:
            what: The change, for an error message (``"creating job 'x' in table jobs"``).
            fn: The statements.
            idempotent: Whether running ``fn`` twice is harmless: if not, a commit
                that may have landed is not tried again.
            single: ``fn`` runs one statement that is atomic on its own (one row,
                or a conditional update and a read).
        """
        autocommit = self._autocommit if single else None

        def attempt() -> T:
            if autocommit is not None:
                with autocommit.connect() as conn:
                    return fn(conn)
            with self.engine.begin() as conn:
                return fn(conn)

        return self.retry(what, attempt, idempotent=idempotent)

    def read(self, what: str, fn: Callable[[Connection], T]) -> T:
        """Run the query ``fn`` and return what it returns (``what`` names it)."""
        source = self._autocommit or self.engine

        def attempt() -> T:
            with source.connect() as conn:
                return fn(conn)

        return self.retry(what, attempt)

    def close(self) -> None:
        """Close every connection."""
        self.engine.dispose()
