"""Initial schema: sources, ingest runs, files seen, lake commits, quarantine.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.String(128), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("duplicate", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("counts_json", sa.Text),
    )
    op.create_index("ix_ingest_runs_source_id", "ingest_runs", ["source_id"])
    op.create_table(
        "lake_commits",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
        sa.Column("source_id", sa.String(128), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("committed_at", TS, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("files", sa.Text, nullable=False),
    )
    op.create_index("ix_lake_commits_run_id", "lake_commits", ["run_id"])
    op.create_table(
        "files_seen",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.String(128), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_index("ix_files_seen_source_sha", "files_seen", ["source_id", "sha256"])
    op.create_index("ix_files_seen_run_id", "files_seen", ["run_id"])
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.String(128), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ingest_runs.id")),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("stored_copy", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_quarantine_source_id", "quarantine", ["source_id"])


def downgrade() -> None:
    for name in ("quarantine", "files_seen", "lake_commits", "ingest_runs", "sources"):
        op.drop_table(name)
