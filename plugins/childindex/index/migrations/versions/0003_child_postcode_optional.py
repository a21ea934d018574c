"""child.postcode may be empty: a sensitive involvement's address is never kept

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.alter_column("postcode", existing_type=sa.String(length=8), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.alter_column("postcode", existing_type=sa.String(length=8), nullable=False)
