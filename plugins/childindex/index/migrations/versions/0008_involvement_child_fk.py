"""Drop involvement's foreign key to child; it follows its source record's

An involvement belongs to one source record (foreign key, cascading), and that record to a
child (foreign key); involvement.child_id is a copy of the record's, written in the same
statement set by publish, for the reader view. The second key to child checked nothing the
first two do not, and was a third of a PostgreSQL bulk load's cost (one locking lookup in
child per row: benchmarks/bench_pg_load.py). That the copies agree is audited instead
(childindex.timetravel.audit, tests/test_bulk_load.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# SQLite rebuilds the table to change a constraint, and a view on it must wait outside.
VIEW = "reader_involvement"
VIEW_SQL = "SELECT child_id, agency, service, contact_route, start_date, end_date FROM involvement"


def upgrade() -> None:
    op.execute(f"DROP VIEW {VIEW}")
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.drop_constraint("fk_involvement_child_id_child", type_="foreignkey")
    op.execute(f"CREATE VIEW {VIEW} AS {VIEW_SQL}")


def downgrade() -> None:
    op.execute(f"DROP VIEW {VIEW}")
    with op.batch_alter_table("involvement", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_involvement_child_id_child", "child", ["child_id"], ["child_id"])
    op.execute(f"CREATE VIEW {VIEW} AS {VIEW_SQL}")
