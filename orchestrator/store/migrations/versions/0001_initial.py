"""The initial schema: workflows, jobs, loops, node runs, events, cache entries.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_json = sa.JSON(none_as_null=True)
_auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "workflows",
        sa.Column("digest", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("spec", _json, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_workflows_name", "workflows", ["name"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("workflow", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(128), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("spec", _json, nullable=False),
        sa.Column("inputs", _json, nullable=False),
        sa.Column("outputs", _json, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])

    op.create_table(
        "loops",
        sa.Column("id", _auto_id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("desired", sa.String(32), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("failed_iterations", sa.Integer(), nullable=False),
        sa.Column("cursor", _json, nullable=True),
        sa.Column("policy", _json, nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("job_id", "name", name="uq_loops_job_id_name"),
    )
    op.create_index("ix_loops_job_id", "loops", ["job_id"])

    op.create_table(
        "node_runs",
        sa.Column("run_id", sa.String(1024), primary_key=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("loop", sa.String(255), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(255), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("queued_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outputs", _json, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_node_runs_job_id", "node_runs", ["job_id"])
    op.create_index(
        "ix_node_runs_job_id_loop_iteration", "node_runs", ["job_id", "loop", "iteration"]
    )

    op.create_table(
        "events",
        sa.Column("seq", _auto_id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("loop", sa.String(255), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("run_id", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("data", _json, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_job_id_seq", "events", ["job_id", "seq"])

    op.create_table(
        "cache_entries",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("outputs", _json, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table (and with them their indexes)."""
    for table in ("cache_entries", "events", "node_runs", "loops", "jobs", "workflows"):
        op.drop_table(table)
