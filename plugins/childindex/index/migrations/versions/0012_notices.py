"""Notices: each organisation's own reference for its records, and the notices' memory

``source_record.local_ref`` holds the organisation's local id encrypted under the reference
key (staging/reference.py), so a notice can name the child in the organisation's own terms;
records staged before this revision have none until their organisation sends them again.
``notice_pending`` lists records whose child changed tonight (the notices stage's work),
``notice_told`` which organisation's record was told of which other involvement (so nothing
is announced twice and a split can be retracted), ``notice_ledger`` the files written
(counts only).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch rebuild: on SQLite, rebuilding source_record would
    # cascade to every involvement; see 0011).
    op.add_column("source_record", sa.Column("local_ref", sa.String(length=832), nullable=True))
    op.create_table(
        "notice_pending",
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("source_key", name=op.f("pk_notice_pending")),
    )
    op.create_table(
        "notice_told",
        sa.Column("recipient_key", sa.String(length=64), nullable=False),
        sa.Column("other_key", sa.String(length=64), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("recipient_key", "other_key", name=op.f("pk_notice_told")),
    )
    with op.batch_alter_table("notice_told", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_told_other_key"), ["other_key"], unique=False)
    op.create_table(
        "notice_ledger",
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.Column("involvements", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("night", "organisation", "kind", name=op.f("pk_notice_ledger")),
    )


def downgrade() -> None:
    op.drop_table("notice_ledger")
    with op.batch_alter_table("notice_told", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_told_other_key"))
    op.drop_table("notice_told")
    op.drop_table("notice_pending")
    op.drop_column("source_record", "local_ref")  # SQLite 3.35+ drops a column in place
