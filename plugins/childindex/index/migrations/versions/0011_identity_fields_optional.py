"""Identity fields may be empty: a contract may stage a row with a blank identity field

A contract's ``missing_identity`` option (``with_identifier``, ``stage``) lets a row with a
blank given name, family name, date of birth, sex or postcode into staging, so a child's
best record may lack one: ``child``'s four identity columns that were NOT NULL become
nullable (``postcode`` already was: 0003). A record without both names and its date of
birth has no exact-match key, so ``source_record.match_key`` becomes nullable too.

On SQLite a column's NOT NULL cannot be altered in place, and Alembic's batch mode rebuilds
the table: dropping ``source_record`` with foreign keys on would cascade to every
involvement and review item, and dropping ``child`` would fail on the records that name it.
The constraint is instead removed from the stored table definition, by SQLite's own
procedure for removing NOT NULL constraints (https://www.sqlite.org/lang_altertable.html,
"Making Other Kinds Of Table Schema Changes"): nothing on disk but the schema text changes.
The new text is parsed on a scratch database before it is written.

Downgrading puts the constraints back, and is refused while any row lacks a value (counts
only in the message).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import re
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS: dict[str, tuple[tuple[str, sa.types.TypeEngine], ...]] = {
    "child": (
        ("given_name", sa.String(length=100)),
        ("family_name", sa.String(length=100)),
        ("date_of_birth", sa.Date()),
        ("sex", sa.String(length=1)),
    ),
    "source_record": (("match_key", sa.String(length=64)),),
}


def upgrade() -> None:
    _set_nullable(True)


def downgrade() -> None:
    conn = op.get_bind()
    for table, columns in COLUMNS.items():
        for name, _ in columns:
            n = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {name} IS NULL")).scalar_one()
            if n:
                raise RuntimeError(f"{n} rows of {table} have no {name}: the column cannot be NOT NULL again")
    _set_nullable(False)


def _set_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_set_nullable(nullable)
        return
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, type_ in columns:
                batch_op.alter_column(name, existing_type=type_, nullable=nullable)


def _sqlite_set_nullable(nullable: bool) -> None:
    """SQLite's procedure: in the migration's transaction, edit the tables' stored
    definitions, then bump the schema version so every connection reads them again."""
    conn = op.get_bind()
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    definitions = {}
    for table, columns in COLUMNS.items():
        sql = conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
        ).scalar_one()
        for name, _ in columns:
            sql = _column_nullable(sql, name, nullable)
        scratch = sqlite3.connect(":memory:")  # a definition that does not parse would corrupt the database
        try:
            scratch.execute(sql)
        finally:
            scratch.close()
        definitions[table] = sql
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table, sql in definitions.items():
            conn.execute(
                sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"),
                {"sql": sql, "t": table},
            )
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"the index failed SQLite's integrity check after migration 0011: {problems[:5]}")


def _column_nullable(sql: str, name: str, nullable: bool) -> str:
    """A CREATE TABLE statement with column ``name``'s NOT NULL removed (or added)."""
    pattern = re.compile(rf'([(,]\s*"?{name}"?\s+[A-Z]+(?:\(\d+\))?)((?:\s+NOT\s+NULL)?)(?=\s*[,)])', re.I)
    found = pattern.findall(sql)
    if len(found) != 1:
        raise RuntimeError(f"migration 0011 cannot find column {name} in the stored table definition")
    return pattern.sub(lambda m: m.group(1) + ("" if nullable else " NOT NULL"), sql)
