from __future__ import annotations

from datetime import date

from sqlalchemy import inspect, text

from childindex.index.db import engine_for, migrate
from childindex.index.models import Base

EXPECTED = {
    "child",
    "involvement",
    "source_record",
    "child_id_history",
    "file_ledger",
    "night_metric",
    "deletion_log",
    "review_item",
    "link_decision",
    "key_epoch",
    "organisation",
    "area",
    "notice_pending",
    "notice_told",
    "notice_ledger",
    "alembic_version",
}


def _check(url: str) -> None:
    migrate(url)
    migrate(url)  # idempotent
    engine = engine_for(url)
    insp = inspect(engine)
    assert set(insp.get_table_names()) == EXPECTED
    # What readers may select: no keys, no source-record mapping.
    assert set(insp.get_view_names()) == {"reader_child", "reader_involvement", "reader_child_id_history"}
    assert not any("key" in c["name"] for v in insp.get_view_names() for c in insp.get_columns(v))
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in insp.get_columns(table.name)} == set(table.columns.keys())
        # Which columns may be NULL: the migrations and the models agree (0011: identity fields).
        nullable = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
        assert nullable == {c.name: c.nullable for c in table.columns}, table.name
    # The child table holds minimal identity and nothing else.
    assert {c["name"] for c in insp.get_columns("child")} == {
        "child_id",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "postcode",
        "first_seen",
        "last_seen",
    }
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO child VALUES ('C1','A','B',:d,'F','LS6 2AB',:d,:d)"), {"d": date(2020, 1, 1)})
        conn.execute(
            text(
                "INSERT INTO source_record (source_key, organisation, child_id, match_key, first_seen, last_seen) "
                "VALUES (:k,'RH1','C1',:k,:d,:d)"
            ),
            {"k": "a" * 64, "d": date(2020, 1, 1)},
        )
        conn.execute(
            text(
                "INSERT INTO involvement (source_key, child_id, organisation, sector, area, service, contact_route, "
                "start_date, end_date, last_seen) VALUES (:k,'C1','RH1','health','E06000047','school_nursing','x',"
                "NULL,NULL,:d)"
            ),
            {"k": "a" * 64, "d": date(2020, 1, 1)},
        )


def test_migration_runs_on_sqlite(tmp_path) -> None:
    _check(f"sqlite:///{tmp_path / 'index.sqlite'}")


def test_migration_runs_on_postgresql(pg_url: str) -> None:
    _check(pg_url)


def test_sqlite_runs_with_secure_delete_and_foreign_keys(tmp_path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'i.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
