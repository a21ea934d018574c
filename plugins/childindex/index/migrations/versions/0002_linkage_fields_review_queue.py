"""linkage fields on source records, the clerical review queue and link decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

IDENTITY = (
    ("given_name", sa.String(length=100)),
    ("family_name", sa.String(length=100)),
    ("date_of_birth", sa.Date()),
    ("sex", sa.String(length=1)),
    ("postcode", sa.String(length=8)),
)


def upgrade() -> None:
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        for name, type_ in IDENTITY:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("new_key", sa.String(length=64), nullable=False),
        sa.Column("other_key", sa.String(length=64), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["new_key"],
            ["source_record.source_key"],
            name=op.f("fk_review_item_new_key_source_record"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_key"],
            ["source_record.source_key"],
            name=op.f("fk_review_item_other_key_source_record"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
    )
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_item_night"), ["night"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_item_new_key"), ["new_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_item_other_key"), ["other_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_item_status"), ["status"], unique=False)
    op.create_table(
        "link_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_a", sa.String(length=64), nullable=False),
        sa.Column("key_b", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_decision")),
    )
    with op.batch_alter_table("link_decision", schema=None) as batch_op:
        batch_op.create_index("ix_link_decision_pair", ["key_a", "key_b"], unique=True)
        batch_op.create_index(batch_op.f("ix_link_decision_key_b"), ["key_b"], unique=False)


def downgrade() -> None:
    op.drop_table("link_decision")
    op.drop_table("review_item")
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        for name, _ in reversed(IDENTITY):
            batch_op.drop_column(name)
