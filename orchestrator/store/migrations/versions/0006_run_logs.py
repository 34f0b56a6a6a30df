"""Run logs (DESIGN 3.16): each run attempt's log records, kept with the run.

One row per record: the context logger's, the node's own ``logging`` and its
printed lines, bounded per attempt by whoever ran it. Read by job, in ``id``
order (``segue logs --follow`` asks for the ids after the last it showed);
an attempt executed again replaces its rows, by run id and attempt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``run_logs`` and its two indexes."""
    op.create_table(
        "run_logs",
        sa.Column("id", _auto_id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(1024), nullable=False),
        sa.Column("loop", sa.String(255), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("logger", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_run_logs_job_id_id", "run_logs", ["job_id", "id"])
    op.create_index("ix_run_logs_run_id_attempt", "run_logs", ["run_id", "attempt"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("run_logs")
