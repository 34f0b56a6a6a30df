"""A connection of its own per thread for a worker's one-row run writes (PostgreSQL).

A worker's threads each write every run they finish. Through the pool, each
write checks a connection out and back in under the pool's lock, switches it
to autocommit and back, and runs SQLAlchemy's execution machinery: with a
Celery worker's threads all doing it, that costs more than the write. A thread
here keeps one autocommit driver connection and sends the compiled upsert on
it. At most ``limit`` threads get one (the rest use the pool), so a worker
with many threads does not hold many connections; a thread's connection is
closed when the thread ends or the store closes. A broken connection is
dropped, and the error re-raised as SQLAlchemy's, so the store's retries
apply: the next try connects afresh.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError


class _Holder:
    """Lives in a thread's locals: when the thread ends, its connection is closed."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection


class DirectWrites:
    """Per-thread autocommit driver connections, at most ``limit`` of them."""

    def __init__(self, engine: Engine, limit: int) -> None:
        self.engine = engine
        self.limit = limit
        self._local = threading.local()
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False

    def rowcount(self, sql: str, params: tuple[Any, ...]) -> int | None:
        """Run one statement on this thread's connection; ``None``: use the pool instead."""
        connection = self._connection()
        if connection is None:
            return None
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            return int(connection.execute(sql, params).rowcount)
        except dbapi.Error as exc:
            if connection.closed or connection.broken:
                self._forget(connection)
                self._local.holder = None
            raise DBAPIError.instance(
                sql, params, exc, dbapi.Error, connection_invalidated=connection.closed
            ) from exc

    def _connection(self) -> Any | None:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is not None and not holder.connection.closed:
            return holder.connection
        with self._lock:
            if self._closed or len(self._open) >= self.limit:
                return None
            cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
            try:
                connection = self.engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
            except self.engine.dialect.loaded_dbapi.Error as exc:
                raise DBAPIError.instance(
                    "connect", {}, exc, self.engine.dialect.loaded_dbapi.Error
                ) from exc
            connection.autocommit = True
            self._open.add(connection)
        holder = _Holder(connection)
        weakref.finalize(holder, self._forget, connection)
        self._local.holder = holder
        return connection

    def _forget(self, connection: Any) -> None:
        with self._lock:
            self._open.discard(connection)
        connection.close()

    def close(self) -> None:
        """Close every thread's connection; later writes use the pool."""
        with self._lock:
            self._closed = True
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.close()
