"""The store's hot writes, below SQLAlchemy's per-statement machinery.

Node runs are written with one conditional upsert (see :mod:`.store`), kept as
SQL text with positional parameters and executed by the driver on tuples:
building a parameter dict per row and going through SQLAlchemy's execution
costs more than the write itself - the embedded engine records tens of
thousands of runs a second, and a worker writes two records per run. Events
go to PostgreSQL with ``COPY``, a fraction of an executemany's cost per row
(every driver journals every scheduler input), and elsewhere with one
``INSERT`` compiled once, on tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Dialect

from orchestrator.store import rules
from orchestrator.store.base import EventRecord, RunRecord
from orchestrator.store.sql.models import EVENTS, RUNS

RUN_COLUMNS = (
    "run_id",
    "job_id",
    "loop",
    "iteration",
    "node_id",
    "type_name",
    "status",
    "attempt",
    "queue",
    "worker",
    "queued_at",
    "started_at",
    "finished_at",
    "outputs",
    "error",
    "traceback",
)
_KEEP_ROWCOUNT: dict[str, Any] = {"preserve_rowcount": True}
"""Keep the summed row count of an executemany."""


def not_in(column: ColumnElement[str], values: Iterable[str]) -> ColumnElement[bool]:
    """``column NOT IN (...)`` with literals: an expanding IN cannot run as executemany."""
    return column.not_in([literal_column(f"'{v}'") for v in sorted(values)])


class RunWriter:
    """Writes node runs with the conditional upsert, compiled once to positional SQL."""

    def __init__(self, dialect: Dialect, insert: sqlite.Insert | postgresql.Insert) -> None:
        new = insert.excluded
        set_: dict[str, Any] = {c.name: new[c.name] for c in RUNS.c if c.name != "run_id"}
        for name in rules.RUN_KEPT_WHEN_NONE:
            set_[name] = func.coalesce(new[name], RUNS.c[name])
        where = and_(not_in(RUNS.c.status, rules.RUN_TERMINAL), RUNS.c.attempt <= new.attempt)
        # executemany + rowcount, not RETURNING: psycopg parses a multi-row
        # RETURNING statement in Python, several times slower for big batches.
        upsert = insert.on_conflict_do_update(index_elements=["run_id"], set_=set_, where=where)
        if dialect.name == "postgresql":
            dialect = PGDialect_psycopg(paramstyle="format")  # type: ignore[no-untyped-call]
        compiled = upsert.compile(dialect=dialect)
        if list(compiled.positiontup or ()) != list(RUN_COLUMNS):  # tuples follow RUN_COLUMNS
            raise RuntimeError(f"the run upsert binds {compiled.positiontup}, not {RUN_COLUMNS}")
        self.text = str(compiled)

    def write(self, conn: Connection, runs: list[RunRecord]) -> int:
        """Upsert ``runs`` (unique run ids); the count of rows inserted or updated."""
        tuples = [run_tuple(run) for run in runs]
        params = tuples[0] if len(tuples) == 1 else tuples  # one row: no executemany
        return conn.exec_driver_sql(self.text, params, execution_options=_KEEP_ROWCOUNT).rowcount


def run_tuple(r: RunRecord) -> tuple[Any, ...]:
    """A run's values in :data:`RUN_COLUMNS` order, outputs as JSON text (as
    :func:`_dumps` writes it: every store gets valid JSON, PostgreSQL's ``json``
    type included)."""
    return (
        r.run_id,
        r.job_id,
        r.loop,
        r.iteration,
        r.node_id,
        r.type_name,
        r.status,
        r.attempt,
        r.queue,
        r.worker,
        r.queued_at,
        r.started_at,
        r.finished_at,
        None if r.outputs is None else _dumps(r.outputs),
        r.error,
        r.traceback,
    )


def _dumps(data: object) -> str:
    """Run outputs and event data as JSON text: orjson, a tenth of ``json.dumps``'s
    cost, written for every run and every journal entry (a number that is not
    finite becomes ``null``: JSON has no NaN, and PostgreSQL refuses it)."""
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


EVENT_COLUMNS = ("job_id", "kind", "at", "loop", "iteration", "node", "run_id", "status", "data")


class EventWriter:
    """Appends events with one ``INSERT``, compiled once to positional SQL (the
    dialects other than PostgreSQL, which takes :func:`copy_events`)."""

    def __init__(self, dialect: Dialect) -> None:
        insert = EVENTS.insert().values({c: bindparam(c) for c in EVENT_COLUMNS})
        compiled = insert.compile(dialect=dialect)
        bound = list(compiled.positiontup or ())
        if bound != list(EVENT_COLUMNS):
            raise RuntimeError(f"the event insert binds {bound}, not {EVENT_COLUMNS}")
        self.text = str(compiled)

    def write(self, conn: Connection, events: Sequence[EventRecord]) -> None:
        """Append ``events`` in order."""
        dumps = _dumps
        tuples = [
            (e.job_id, e.kind, e.at, e.loop, e.iteration, e.node, e.run_id, e.status, dumps(e.data))
            for e in events
        ]
        conn.exec_driver_sql(self.text, tuples[0] if len(tuples) == 1 else tuples)


_COPY_EVENTS = (
    "COPY events (job_id, kind, at, loop, iteration, node, run_id, status, data) FROM STDIN"
)


def copy_events(conn: Connection, events: Sequence[EventRecord]) -> None:
    """Append events on PostgreSQL with ``COPY``, in the caller's transaction."""
    driver = conn.connection.driver_connection
    assert driver is not None
    dumps = _dumps
    with driver.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
        for e in events:
            row = (e.job_id, e.kind, e.at, e.loop, e.iteration, e.node, e.run_id, e.status)
            copy.write_row((*row, dumps(e.data)))
