"""Drop the indexes on source_record's nhs_key, upn_key and match_key

Linkage compares pseudonyms in DuckDB, never by a lookup in the index database, so these
three indexes were only written, never read: they cost about a third of a bulk load on
PostgreSQL (benchmarks/bench_pg_load.py) and kept a second, sorted copy of every pseudonym
on disk.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("nhs_key", "upn_key", "match_key")


def upgrade() -> None:
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_index(f"ix_source_record_{column}")


def downgrade() -> None:
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.create_index(f"ix_source_record_{column}", [column], unique=False)
