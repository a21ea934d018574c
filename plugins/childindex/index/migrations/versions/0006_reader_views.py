"""Reader views: what a practitioner may see (no source-record mapping, no keys)

The reader role selects these views only; they show who the child is, which services are
involved and how to reach them, and how an old child id was merged or split.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VIEWS = {
    "reader_child": "SELECT child_id, given_name, family_name, date_of_birth, sex, postcode FROM child",
    "reader_involvement": ("SELECT child_id, agency, service, contact_route, start_date, end_date FROM involvement"),
    "reader_child_id_history": "SELECT old_child_id, new_child_id, night, reason FROM child_id_history",
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
