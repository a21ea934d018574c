"""A review item may have no match probability

A person's "same child" that conflicts with other decisions or with the identifiers is
undone and sent back to the review queue (``decided_match_conflicts``). When neither record
came tonight, or the pair scored below the review threshold (two different NHS numbers),
the model kept no score for it and there is no probability to show:
``review_item.match_probability`` becomes nullable.

On SQLite Alembic's batch mode rebuilds ``review_item``: nothing refers to it, so dropping
and re-creating it cascades nowhere (unlike source_record's, see 0011).

Downgrading is refused while an item has no probability (a count only in the message).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.alter_column("match_probability", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    n = op.get_bind().execute(sa.text("SELECT count(*) FROM review_item WHERE match_probability IS NULL")).scalar_one()
    if n:
        raise RuntimeError(f"{n} review items have no match probability: the column cannot be NOT NULL again")
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.alter_column("match_probability", existing_type=sa.Float(), nullable=False)
