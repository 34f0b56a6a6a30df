"""The SQL store's statements on cached node outputs (table ``cache_entries``)."""

from __future__ import annotations

from pydantic import JsonValue
from sqlalchemy import Connection, select

from orchestrator.store.sql.jobs import Insert
from orchestrator.store.sql.models import CACHE


def get(conn: Connection, key: str) -> dict[str, JsonValue] | None:
    """The outputs stored under ``key``, or ``None``."""
    row = conn.execute(select(CACHE.c.outputs).where(CACHE.c.key == key)).first()
    return row.outputs if row is not None else None


def put(
    conn: Connection,
    insert: Insert,
    key: str,
    type_name: str,
    outputs: dict[str, JsonValue],
    at: float,
) -> None:
    """Store ``outputs`` under ``key``; the first write wins."""
    stmt = insert.on_conflict_do_nothing(index_elements=["key"])
    conn.execute(stmt, {"key": key, "type_name": type_name, "outputs": outputs, "created_at": at})
