"""Migration 0010: an index built with the three national agencies upgrades in place to
organisations (and back), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import inspect, text

from childindex.index.db import alembic_config, engine_for

D = date(2026, 11, 20)
AGENCIES = ("health", "education", "social_care")
NEW_VIEW_COLUMNS = [
    "child_id",
    "organisation",
    "organisation_name",
    "sector",
    "area",
    "area_name",
    "service",
    "contact_route",
    "start_date",
    "end_date",
]
OLD_VIEW_COLUMNS = ["child_id", "agency", "service", "contact_route", "start_date", "end_date"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An index database with no schema yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    return request.getfixturevalue("pg_url")


def to_revision(url: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(url)
    with engine_for(url).begin() as conn:
        cfg.attributes["connection"] = conn
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if _versioned(conn) else None
        if current is not None and current > revision:
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)


def _versioned(conn) -> bool:
    return "alembic_version" in inspect(conn).get_table_names()


def key(n: int) -> str:
    return f"{n:064x}"


def fill_at_0009(url: str) -> None:
    """A few rows of each agency as an index at 0009 holds them (review items and a
    decision too, which hang on source records)."""
    with engine_for(url).begin() as conn:
        for c in ("C1", "C2"):
            conn.execute(text("INSERT INTO child VALUES (:c,'Ada','Example',:d,'F','DH1 1AA',:d,:d)"), {"c": c, "d": D})
        for n, (agency, child) in enumerate(zip(AGENCIES, ("C1", "C1", "C2"), strict=True), start=1):
            conn.execute(
                text(
                    "INSERT INTO source_record (source_key, agency, child_id, nhs_key, upn_key, match_key, "
                    "first_seen, last_seen, given_name, family_name, date_of_birth, sex, postcode) "
                    "VALUES (:k, :a, :c, NULL, NULL, :m, :d, :d, 'Ada', 'Example', :d, 'F', 'DH1 1AA')"
                ),
                {"k": key(n), "a": agency, "c": child, "m": key(100 + n), "d": D},
            )
            conn.execute(
                text(
                    "INSERT INTO involvement (source_key, child_id, agency, service, contact_route, start_date, "
                    "end_date, last_seen) VALUES (:k, :c, :a, :s, '0191 496 0000', :d, NULL, :d)"
                ),
                {"k": key(n), "c": child, "a": agency, "s": f"{agency}_service", "d": D},
            )
            conn.execute(
                text(
                    "INSERT INTO file_ledger (agency, file_name, sha256, night, received_at, status, rows_read, "
                    "rows_accepted, rows_rejected, staged_path, seconds) "
                    "VALUES (:a, :f, :h, :d, :t, 'linked', 1, 1, 0, NULL, 0.5)"
                ),
                {"a": agency, "f": f"{agency}.csv", "h": key(200 + n), "d": D, "t": "2026-11-21 02:00:00"},
            )
        conn.execute(
            text(
                "INSERT INTO review_item (night, new_key, other_key, match_probability, reason, model_version, "
                "status) VALUES (:d, :a, :b, 0.5, 'probability_between_thresholds', 1, 'open')"
            ),
            {"d": D, "a": key(1), "b": key(3)},
        )


def rows(url: str, sql: str) -> list[tuple]:
    with engine_for(url).connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(sql)).all())


def indexes(url: str, table: str) -> set[str]:
    return {i["name"] for i in inspect(engine_for(url)).get_indexes(table)}


def columns(url: str, table: str) -> list[str]:
    return [c["name"] for c in inspect(engine_for(url)).get_columns(table)]


def test_an_index_of_agencies_upgrades_to_organisations_and_back(empty_url: str) -> None:
    url = empty_url
    to_revision(url, "0009")
    fill_at_0009(url)

    to_revision(url, "head")
    insp = inspect(engine_for(url))
    assert {"organisation", "area"} <= set(insp.get_table_names())
    # Each agency the index held is one organisation of its own sector, code = the agency.
    assert rows(url, "SELECT code, sector FROM organisation") == sorted((a, a) for a in AGENCIES)
    assert all("national agency" in name for (name,) in rows(url, "SELECT name FROM organisation"))
    assert rows(url, "SELECT count(*) FROM area") == [(0,)]
    # agency columns are organisation columns, the values and every row kept.
    for table in ("source_record", "involvement", "file_ledger"):
        assert "agency" not in columns(url, table) and "organisation" in columns(url, table), table
    assert rows(url, "SELECT source_key, organisation, child_id FROM source_record") == [
        (key(1), "health", "C1"),
        (key(2), "education", "C1"),
        (key(3), "social_care", "C2"),
    ]
    assert rows(url, "SELECT source_key, organisation, sector, area, service FROM involvement") == [
        (key(1), "health", "health", None, "health_service"),
        (key(2), "education", "education", None, "education_service"),
        (key(3), "social_care", "social_care", None, "social_care_service"),
    ]
    assert rows(url, "SELECT organisation, file_name, seconds FROM file_ledger") == sorted(
        (a, f"{a}.csv", 0.5) for a in AGENCIES
    )
    assert rows(url, "SELECT count(*) FROM review_item") == [(1,)]  # not cascaded away by a rebuild
    assert not [c for c in insp.get_columns("involvement") if c["name"] == "sector" and c["nullable"]]
    assert "ix_file_ledger_organisation_sha256" in indexes(url, "file_ledger")
    assert "ix_file_ledger_agency_sha256" not in indexes(url, "file_ledger")
    # The reader view names the organisation (and the area, unknown before the registry).
    assert [c["name"] for c in insp.get_columns("reader_involvement")] == NEW_VIEW_COLUMNS
    view = rows(
        url, "SELECT child_id, organisation, organisation_name, sector, area, area_name FROM reader_involvement"
    )
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in view] == [
        ("C1", "education", "education", None, None),
        ("C1", "health", "health", None, None),
        ("C2", "social_care", "social_care", None, None),
    ]
    assert all(r[2] and "national agency" in r[2] for r in view)
    # At head the index takes tonight's rows: an organisation of the registry, its area.
    with engine_for(url).begin() as conn:
        conn.execute(text("INSERT INTO area VALUES ('E06000047', 'County Durham')"))
        conn.execute(text("UPDATE involvement SET area = 'E06000047' WHERE source_key = :k"), {"k": key(1)})
    assert rows(url, "SELECT area_name FROM reader_involvement WHERE organisation = 'health'") == [("County Durham",)]

    to_revision(url, "0009")
    insp = inspect(engine_for(url))
    assert not {"organisation", "area"} & set(insp.get_table_names())
    for table in ("source_record", "involvement", "file_ledger"):
        assert "agency" in columns(url, table) and "organisation" not in columns(url, table), table
    assert not {"sector", "area"} & set(columns(url, "involvement"))
    assert rows(url, "SELECT source_key, agency FROM source_record") == [
        (key(1), "health"),
        (key(2), "education"),
        (key(3), "social_care"),
    ]
    assert rows(url, "SELECT source_key, agency FROM involvement") == rows(
        url, "SELECT source_key, agency FROM source_record"
    )
    assert rows(url, "SELECT agency FROM file_ledger") == sorted((a,) for a in AGENCIES)
    assert rows(url, "SELECT count(*) FROM review_item") == [(1,)]
    assert "ix_file_ledger_agency_sha256" in indexes(url, "file_ledger")
    assert "ix_file_ledger_organisation_sha256" not in indexes(url, "file_ledger")
    assert [c["name"] for c in insp.get_columns("reader_involvement")] == OLD_VIEW_COLUMNS
    assert rows(url, "SELECT child_id, agency FROM reader_involvement") == [
        ("C1", "education"),
        ("C1", "health"),
        ("C2", "social_care"),
    ]

    to_revision(url, "head")  # and up again
    assert rows(url, "SELECT code, sector FROM organisation") == sorted((a, a) for a in AGENCIES)
    assert rows(url, "SELECT organisation, sector FROM involvement") == sorted((a, a) for a in AGENCIES)


def test_an_empty_index_at_0009_upgrades_with_no_organisations(empty_url: str) -> None:
    to_revision(empty_url, "0009")
    to_revision(empty_url, "head")
    assert rows(empty_url, "SELECT count(*) FROM organisation") == [(0,)]
    assert [c["name"] for c in inspect(engine_for(empty_url)).get_columns("reader_involvement")] == NEW_VIEW_COLUMNS
