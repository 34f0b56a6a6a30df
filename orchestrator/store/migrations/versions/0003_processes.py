"""Liveness: every worker, coordinator and embedded engine announces itself.

One row per process start, replaced at each heartbeat, with the runs (or
jobs) it holds; a claim on a run held by a live worker is refused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the processes table."""
    op.create_table(
        "processes",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("beat_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("idle_since", sa.Float(), nullable=True),
        sa.Column("holds", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("queues", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("info", sa.JSON(none_as_null=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the processes table."""
    op.drop_table("processes")
