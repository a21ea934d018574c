"""key_epoch: which pseudonymisation key the index's keys were made with

Each rotation of the key starts a new epoch. Intake and linkage refuse to run with a key
whose id is not the current epoch's, so a forgotten key swap can never mix pseudonyms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_epoch",
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_key_epoch")),
    )


def downgrade() -> None:
    op.drop_table("key_epoch")
