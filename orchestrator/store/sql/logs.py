"""The SQL store's run log statements (table ``run_logs``).

An attempt's records are replaced as a whole: its old rows deleted and the
new ones inserted in one transaction, so a run executed again (a redelivered
task) keeps the log of its latest execution and never two mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import Connection, delete, insert, select

from orchestrator.store.base import LogRecord
from orchestrator.store.sql.models import RUN_LOGS


def save(conn: Connection, run_id: str, attempt: int, records: Sequence[LogRecord]) -> None:
    """Replace the rows of ``run_id``'s ``attempt`` with ``records``."""
    conn.execute(delete(RUN_LOGS).where(RUN_LOGS.c.run_id == run_id, RUN_LOGS.c.attempt == attempt))
    rows = []
    for record in records:
        row = asdict(record)
        del row["id"]
        row["run_id"], row["attempt"] = run_id, attempt
        rows.append(row)
    if rows:
        conn.execute(insert(RUN_LOGS), rows)


def read(
    conn: Connection,
    job_id: str,
    after: int,
    loop: str | None,
    node: str | None,
    level: int,
    limit: int,
) -> list[LogRecord]:
    """A job's rows with ``id > after``, filtered, oldest first."""
    c = RUN_LOGS.c
    stmt = select(RUN_LOGS).where(c.job_id == job_id, c.id > after)
    if loop is not None:
        stmt = stmt.where(c.loop == loop)
    if node is not None:
        stmt = stmt.where(c.node_id == node)
    if level:
        stmt = stmt.where(c.level >= level)
    rows = conn.execute(stmt.order_by(c.id).limit(limit)).all()
    return [
        LogRecord(
            run_id=row.run_id,
            job_id=row.job_id,
            loop=row.loop,
            iteration=row.iteration,
            node_id=row.node_id,
            attempt=row.attempt,
            at=row.at,
            level=row.level,
            logger=row.logger,
            message=row.message,
            id=row.id,
        )
        for row in rows
    ]
