"""files_seen: the content hash is named for what it is and says its algorithm (BLAKE3 from now on).

`sha256` becomes `content_hash`, and `hash_algorithm` is added: the rows already there were
SHA-256 and say so ('sha256'); new rows record 'blake3'. Ingestion skips only files whose hash
under the current algorithm is recorded, so a file seen before the upgrade is read once more and
its rows, already in the lake, are deduplicated there. The index on (source_id, sha256) becomes
`ix_files_seen_source_hash` on (source_id, content_hash).

Downgrade: rows whose hash is not SHA-256 are deleted (a `sha256` column must not hold other
digests); the old code then reads those files once more, the lake deduplicating their rows.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HASH = sa.String(64)
ALGORITHM = sa.String(16)


def upgrade() -> None:
    # batch_alter_table: plain ALTERs on PostgreSQL, a copy of the table on SQLite.
    with op.batch_alter_table("files_seen") as batch:
        batch.drop_index("ix_files_seen_source_sha")
        batch.alter_column(
            "sha256", new_column_name="content_hash", existing_type=HASH, existing_nullable=False
        )
        batch.add_column(sa.Column("hash_algorithm", ALGORITHM, nullable=False, server_default="sha256"))
    # The default only labels the rows that were there: a new row must say its algorithm itself.
    with op.batch_alter_table("files_seen") as batch:
        batch.alter_column(
            "hash_algorithm", server_default=None, existing_type=ALGORITHM, existing_nullable=False
        )
    op.create_index("ix_files_seen_source_hash", "files_seen", ["source_id", "content_hash"])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM files_seen WHERE hash_algorithm <> 'sha256'"))
    with op.batch_alter_table("files_seen") as batch:
        batch.drop_index("ix_files_seen_source_hash")
        batch.drop_column("hash_algorithm")
        batch.alter_column(
            "content_hash", new_column_name="sha256", existing_type=HASH, existing_nullable=False
        )
    # After the batch: on SQLite a batch cannot index a column it renames.
    op.create_index("ix_files_seen_source_sha", "files_seen", ["source_id", "sha256"])
