"""A partial index of the runs waiting or running, by queue, for autoscalers.

KEDA scales each worker pool on ``SELECT count(*) FROM node_runs WHERE status
IN ('queued', 'running') AND queue IN (...)`` every few seconds (the Helm chart's
ScaledObjects). Finished runs are almost all of the table, so the index holds
only the active ones: it stays small and the count never scans the table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    """Create the partial index (PostgreSQL and SQLite both support the WHERE)."""
    op.create_index(
        "ix_node_runs_active_queue",
        "node_runs",
        ["queue"],
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_node_runs_active_queue", table_name="node_runs")
