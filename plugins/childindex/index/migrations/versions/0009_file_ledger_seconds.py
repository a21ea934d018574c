"""file_ledger.seconds: how long intake took over each file

For the quality reports' per-agency durations (night_metric ``AGENCY:seconds``). Files
received before this column existed have none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:
        batch_op.drop_column("seconds")
