"""The index holds records and children with blank identity fields (migration 0011).

A contract's ``missing_identity`` option stages rows with a blank given name, family name,
date of birth, sex or postcode; linkage then publishes them, and a child whose only record
lacks a field has none either. On SQLite and PostgreSQL: a night with such rows is linked
and published, the reader view shows the gaps as NULL, and an index from before 0011 keeps
every row when it upgrades (and refuses to downgrade while a NULL would break the old
constraint).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from childindex.index.db import alembic_config, engine_for, migrate
from childindex.intake import run_intake
from childindex.linkage import link_pending
from childindex.settings import load_settings
from childindex.staging.pseudonymise import hmac_hex, local_id_domain
from tests.helpers import ORG, drop, render
from tests.intake.test_blank_identity import blank_identity_rows

NIGHT = date(2026, 11, 24)
NULLABLE_NOW = {
    "child": ("given_name", "family_name", "date_of_birth", "sex", "postcode"),
    "source_record": ("match_key",),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_on(request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path):
    """Settings whose index is a migrated SQLite file or a throwaway PostgreSQL database."""
    over = {"index_url": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    settings = load_settings(**over, data_dir=tmp_path / request.param)
    settings.ensure_dirs()
    migrate(settings.index_url)
    return settings


def test_a_night_with_blank_identity_fields_is_linked_and_published(settings_on) -> None:
    settings, code = settings_on, ORG["health"]
    rows = blank_identity_rows()
    drop(settings, code, render("health", rows))
    [result] = run_intake(settings, code, NIGHT)
    assert (result["rows_accepted"], result["rows_rejected"]) == (5, 1)
    assert link_pending(settings, NIGHT).records == 5

    def key(i: int) -> str:
        return hmac_hex(settings.key, local_id_domain(code), str(rows[i - 1]["local_id"]))

    with engine_for(settings.index_url).connect() as conn:
        records = {
            r.source_key: r
            for r in conn.execute(
                text(
                    "SELECT s.source_key, s.match_key, s.given_name, s.date_of_birth, s.sex, s.postcode, "
                    "c.given_name AS child_given, c.family_name AS child_family, c.date_of_birth AS child_dob, "
                    "c.sex AS child_sex, c.postcode AS child_postcode, c.child_id "
                    "FROM source_record s JOIN child c USING (child_id)"
                )
            )
        }
        assert set(records) == {key(i) for i in (1, 2, 3, 4, 6)}
        assert conn.execute(text("SELECT count(*) FROM involvement")).scalar_one() == 5
        # A record without a name or its date of birth has no exact-match key.
        assert {k for k, r in records.items() if r.match_key is None} == {key(2), key(3), key(6)}
        lonely = records[key(6)]  # every identity field blank; staged for its NHS number
        assert (lonely.given_name, lonely.date_of_birth, lonely.sex, lonely.postcode) == (None, None, None, None)
        assert (lonely.child_given, lonely.child_family, lonely.child_dob, lonely.child_sex, lonely.child_postcode) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert records[key(4)].child_sex is None and records[key(4)].child_postcode is None
        assert records[key(1)].child_given is not None
        reader = conn.execute(
            text("SELECT given_name, family_name, date_of_birth, sex, postcode FROM reader_child WHERE child_id = :c"),
            {"c": lonely.child_id},
        ).one()
        assert tuple(reader) == (None, None, None, None, None)
        involvement = conn.execute(
            text("SELECT service, contact_route FROM reader_involvement WHERE child_id = :c"), {"c": lonely.child_id}
        ).one()
        assert involvement.service == "school_nursing" and involvement.contact_route


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    return request.getfixturevalue("pg_url")


def _to(url: str, revision: str, *, down: bool = False) -> None:
    from alembic import command

    cfg = alembic_config(url)
    with engine_for(url).begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _nullable(url: str) -> dict[str, set[str]]:
    insp = inspect(engine_for(url))
    return {t: {c["name"] for c in insp.get_columns(t) if c["nullable"]} for t in NULLABLE_NOW}


def test_migration_0011_keeps_every_row_and_only_drops_not_null(empty_url: str) -> None:
    url = empty_url
    _to(url, "0010")
    d = date(2026, 11, 20)
    with engine_for(url).begin() as conn:
        conn.execute(text("INSERT INTO child VALUES ('C1','Ada','Example',:d,'F','DH1 1AA',:d,:d)"), {"d": d})
        conn.execute(
            text(
                "INSERT INTO source_record (source_key, organisation, child_id, match_key, first_seen, last_seen, "
                "given_name) VALUES (:k, 'RH1', 'C1', :k, :d, :d, 'Ada')"
            ),
            {"k": "a" * 64, "d": d},
        )
        conn.execute(
            text(
                "INSERT INTO involvement (source_key, child_id, organisation, sector, area, service, contact_route, "
                "start_date, end_date, last_seen) VALUES (:k, 'C1', 'RH1', 'health', NULL, 's', 'x', NULL, NULL, :d)"
            ),
            {"k": "a" * 64, "d": d},
        )
        conn.execute(
            text(
                "INSERT INTO review_item (night, new_key, other_key, match_probability, reason, model_version, status) "
                "VALUES (:d, :k, :k, 0.5, 'r', 1, 'open')"
            ),
            {"k": "a" * 64, "d": d},
        )
    before = _nullable(url)
    assert "given_name" not in before["child"] and "match_key" not in before["source_record"]
    _to(url, "0011")
    after = _nullable(url)
    assert after["child"] == set(NULLABLE_NOW["child"]) and after["source_record"] >= {"match_key"}
    assert after["source_record"] - {"match_key"} == before["source_record"]
    with engine_for(url).begin() as conn:
        for table in ("child", "source_record", "involvement", "review_item"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1, table
        conn.execute(text("INSERT INTO child VALUES ('C2', NULL, NULL, NULL, NULL, NULL, :d, :d)"), {"d": d})
        conn.execute(
            text(
                "INSERT INTO source_record (source_key, organisation, child_id, match_key, first_seen, last_seen) "
                "VALUES (:k, 'RH1', 'C2', NULL, :d, :d)"
            ),
            {"k": "b" * 64, "d": d},
        )
        if url.startswith("sqlite"):
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with pytest.raises(Exception, match="(?i)foreign key"), conn.begin_nested():  # the keys still hold
            conn.execute(
                text(
                    "INSERT INTO source_record (source_key, organisation, child_id, first_seen, last_seen) "
                    "VALUES (:k, 'RH1', 'nobody', :d, :d)"
                ),
                {"k": "c" * 64, "d": d},
            )
    # Back to 0010 only once no row needs the NULLs; the message has counts, never values.
    with pytest.raises(RuntimeError, match="^1 rows of child have no given_name"):
        _to(url, "0010", down=True)
    with engine_for(url).begin() as conn:
        conn.execute(text("DELETE FROM source_record WHERE child_id = 'C2'"))
        conn.execute(text("DELETE FROM child WHERE child_id = 'C2'"))
    _to(url, "0010", down=True)
    assert _nullable(url) == before
    with pytest.raises(Exception, match="(?i)null"), engine_for(url).begin() as conn:
        conn.execute(text("INSERT INTO child VALUES ('C3', NULL, 'B', :d, 'F', NULL, :d, :d)"), {"d": d})
    _to(url, "0011")
    assert _nullable(url) == after


def test_a_childs_fields_come_from_its_best_record_that_has_each(settings_on) -> None:
    """The health record is a child's best, but its date of birth was set aside (malformed):
    the child shows social care's date of birth, not none, so it can be read and aged out."""
    from tests.helpers import child

    settings = settings_on
    health = [child(1, date_of_birth="31/02/2012")] + [child(i) for i in range(2, 7)]  # 1 in 6: under the share
    drop(settings, ORG["health"], render("health", health))
    drop(settings, ORG["social_care"], render("social_care", [child(1, "social_care", postcode=None)]))
    for code in (ORG["health"], ORG["social_care"]):
        [result] = run_intake(settings, code, NIGHT)
        assert result["rows_rejected"] == 0, result
    assert link_pending(settings, NIGHT).records == 7
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.date_of_birth, c.postcode, count(*) FROM child c JOIN source_record s USING (child_id) "
                "GROUP BY c.child_id, c.date_of_birth, c.postcode ORDER BY 3 DESC"
            )
        ).all()
    dob = [str(r[0]) for r in rows]  # SQLite returns the ISO text
    assert (dob[0], rows[0][1], rows[0][2]) == (str(child(1)["date_of_birth"]), child(1)["postcode"], 2)
    assert sorted(dob[1:]) == sorted(str(child(i)["date_of_birth"]) for i in range(2, 7))
