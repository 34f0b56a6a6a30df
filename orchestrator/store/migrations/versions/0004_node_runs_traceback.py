"""A failed node run keeps its traceback (DESIGN 3.16), beside its error.

Written with the error of a ``failed`` run and of a ``retrying`` one (the
latest attempt's); ``NULL`` for a failure that raised nothing (a timeout) and
for runs recorded before this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``node_runs.traceback`` column."""
    op.add_column("node_runs", sa.Column("traceback", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column (SQLite rebuilds the table in batch mode)."""
    with op.batch_alter_table("node_runs") as batch:
        batch.drop_column("traceback")
