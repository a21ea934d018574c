"""Organisations and areas: every involvement names its organisation, sector and area

The three national agencies become organisations: each agency already in the index is one
row of ``organisation`` whose code is the agency's name (``health``, ``education``,
``social_care``) and whose sector is the same, so an existing index upgrades in place and
its records keep their pseudonyms. ``agency`` columns become ``organisation``;
``involvement`` gains ``sector`` (the agency's) and ``area`` (unknown before the registry:
NULL). The reader view names the organisation and the area. ``file_ledger`` gains
``run_night``, the night of the intake run that took a file (a later one than its name's
night: the file was late).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

VIEW = "reader_involvement"
OLD_VIEW_SQL = "SELECT child_id, agency, service, contact_route, start_date, end_date FROM involvement"
NEW_VIEW_SQL = (
    "SELECT i.child_id, i.organisation, o.name AS organisation_name, i.sector, i.area, a.name AS area_name, "
    "i.service, i.contact_route, i.start_date, i.end_date "
    "FROM involvement i LEFT JOIN organisation o ON o.code = i.organisation LEFT JOIN area a ON a.code = i.area"
)
LEGACY_NAMES = {
    "education": "Education (national agency, before the organisations registry)",
    "health": "Health (national agency, before the organisations registry)",
    "social_care": "Social care (national agency, before the organisations registry)",
}


def upgrade() -> None:
    op.create_table(
        "organisation",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_organisation")),
    )
    op.create_table(
        "area",
        sa.Column("code", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_area")),
    )
    # Each agency the index already holds becomes one organisation of its own sector.
    conn = op.get_bind()
    agencies = set()
    for table in ("source_record", "involvement", "file_ledger"):
        agencies |= {r[0] for r in conn.execute(sa.text(f"SELECT DISTINCT agency FROM {table}"))}
    organisation = sa.table("organisation", sa.column("code"), sa.column("name"), sa.column("sector"))
    rows = [{"code": a, "name": LEGACY_NAMES.get(a, a), "sector": a} for a in sorted(agencies)]
    if rows:
        op.bulk_insert(organisation, rows)

    op.execute(f"DROP VIEW {VIEW}")  # SQLite rebuilds the table below; the view waits outside
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.alter_column("agency", new_column_name="organisation", type_=sa.String(length=16))
        batch_op.add_column(sa.Column("sector", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("area", sa.String(length=9), nullable=True))
    op.execute("UPDATE involvement SET sector = organisation")
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.alter_column("sector", existing_type=sa.String(length=16), nullable=False)
    _rename_source_record_column("agency", "organisation", 16)
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_file_ledger_agency_sha256")
        batch_op.alter_column("agency", new_column_name="organisation", type_=sa.String(length=16))
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:  # after the rename: SQLite's batch
        batch_op.create_index("ix_file_ledger_organisation_sha256", ["organisation", "sha256"], unique=False)
        batch_op.add_column(sa.Column("run_night", sa.Date(), nullable=True))
    op.execute(f"CREATE VIEW {VIEW} AS {NEW_VIEW_SQL}")


def downgrade() -> None:
    op.execute(f"DROP VIEW {VIEW}")
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:
        batch_op.drop_column("run_night")
        batch_op.drop_index("ix_file_ledger_organisation_sha256")
        batch_op.alter_column("organisation", new_column_name="agency", type_=sa.String(length=32))
    with op.batch_alter_table("file_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_file_ledger_agency_sha256", ["agency", "sha256"], unique=False)
    _rename_source_record_column("organisation", "agency", 32)
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.drop_column("area")
        batch_op.drop_column("sector")
        batch_op.alter_column("organisation", new_column_name="agency", type_=sa.String(length=32))
    op.execute(f"CREATE VIEW {VIEW} AS {OLD_VIEW_SQL}")
    op.drop_table("area")
    op.drop_table("organisation")


def _rename_source_record_column(old: str, new: str, length: int) -> None:
    """In place, never by SQLite's batch rebuild: dropping the old source_record with foreign
    keys on cascades to every involvement and review item. SQLite ignores a VARCHAR's length."""
    if op.get_bind().dialect.name == "sqlite":
        op.alter_column("source_record", old, new_column_name=new)
    else:
        op.alter_column("source_record", old, new_column_name=new, type_=sa.String(length=length))
