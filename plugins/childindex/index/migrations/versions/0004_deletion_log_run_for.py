"""deletion_log.run_for: the day a retention run was for (its logical date)

Retention ages its own log by the day each run was for, not by the wall clock, so that a
rerun of a day, or a simulated clock, deletes the same rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deletion_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_for", sa.Date(), nullable=True))
    # Runs logged before this column existed were for the day they ran.
    day = "date(run_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(run_at AS DATE)"
    op.execute(f"UPDATE deletion_log SET run_for = {day}")
    with op.batch_alter_table("deletion_log", schema=None) as batch_op:
        batch_op.alter_column("run_for", existing_type=sa.Date(), nullable=False)
        batch_op.create_index(batch_op.f("ix_deletion_log_run_for"), ["run_for"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deletion_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deletion_log_run_for"))
        batch_op.drop_column("run_for")
