"""Cheaper node-run writes: no single-column job index, room for in-place updates.

A run row is written two or three times (queued, running, finished). The
``(job_id, loop, iteration)`` index already serves every lookup by job, so the
separate ``job_id`` index only cost a write per insert. On PostgreSQL the table
leaves 30% of each page free, so the later writes of a row are heap-only
(HOT) updates that touch no index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FILLFACTOR = 70


def upgrade() -> None:
    """Drop the redundant index; set the fill factor on PostgreSQL."""
    op.drop_index("ix_node_runs_job_id", table_name="node_runs")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE node_runs SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    """Restore the index and the default fill factor."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE node_runs RESET (fillfactor)")
    op.create_index("ix_node_runs_job_id", "node_runs", ["job_id"])
