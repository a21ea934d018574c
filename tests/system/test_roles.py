"""Least-privilege roles on PostgreSQL (sql/): each stage runs as its own role, and every
action outside its stage is refused by the database itself."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from childindex.index.db import migrate
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.retention import run_retention
from childindex.settings import load_settings
from tests.helpers import ORG, child, drop, render

SQL = Path(__file__).resolve().parents[2] / "sql"
NIGHT = date(2026, 11, 24)
ROLES = ("owner", "loader", "retention", "reader")

# (role, statement) the database must refuse.
FORBIDDEN = [
    ("reader", "SELECT * FROM source_record"),  # the mapping: never for readers
    ("reader", "SELECT * FROM child"),  # tables at all: views only
    ("reader", "SELECT * FROM review_item"),
    ("reader", "SELECT * FROM file_ledger"),
    ("reader", "SELECT * FROM key_epoch"),
    ("reader", "SELECT * FROM organisation"),  # the registry's copy: through reader_involvement only
    ("reader", "SELECT * FROM area"),
    ("reader", "INSERT INTO child VALUES ('X', 'A', 'B', '2015-01-01', 'F', NULL, '2026-01-01', '2026-01-01')"),
    ("reader", "DELETE FROM child"),
    ("loader", "DELETE FROM deletion_log"),  # no hiding what retention did
    ("loader", "UPDATE deletion_log SET rows_deleted = 0"),
    ("loader", "UPDATE key_epoch SET key_id = 'x'"),
    ("loader", "DROP TABLE child"),
    ("loader", "ALTER TABLE child ADD COLUMN notes TEXT"),  # no new fields outside migrations
    ("loader", "TRUNCATE child"),
    ("loader", "CREATE TABLE copy_of_children (x TEXT)"),
    ("loader", "SELECT * FROM alembic_version"),
    ("retention", "INSERT INTO child VALUES ('X', 'A', 'B', '2015-01-01', 'F', NULL, '2026-01-01', '2026-01-01')"),
    ("retention", "UPDATE child SET given_name = 'X'"),
    ("retention", "UPDATE source_record SET last_seen = '2026-01-01'"),
    ("retention", "UPDATE file_ledger SET file_name = 'x'"),  # only the status column
    (
        "retention",
        "INSERT INTO source_record (source_key, organisation, child_id, match_key, first_seen, last_seen) "
        "VALUES ('k', 'RH1', 'C', 'm', '2026-01-01', '2026-01-01')",
    ),  # fmt: skip
    ("retention", "DROP TABLE involvement"),
    ("retention", "UPDATE organisation SET name = 'x'"),  # publish keeps the registry's copy, not retention
    ("retention", "CREATE TABLE copy_of_children (x TEXT)"),
]


@pytest.fixture()
def role_urls(pg_url: str) -> dict[str, str]:
    """A database set up as production is: roles, migrations as the owner, grants."""
    _psql(pg_url, "01_roles.sql")
    urls = {r: make_url(pg_url).set(username=f"childindex_{r}").render_as_string(hide_password=False) for r in ROLES}
    migrate(urls["owner"])
    _psql(urls["owner"], "02_grants.sql")
    _psql(urls["owner"], "02_grants.sql")  # idempotent
    yield urls
    from childindex.index.db import engine_for

    for url in urls.values():
        engine_for(url).dispose()


def _psql(url: str, name: str) -> None:
    """Run one of sql/'s files with the command operators use (``childindex db apply-sql``)."""
    from typer.testing import CliRunner

    from childindex.cli import app

    result = CliRunner().invoke(app, ["db", "apply-sql", str(SQL / name)], env={"CHILDINDEX_INDEX_URL": url})
    assert result.exit_code == 0, result.output


def _refused(url: str, statement: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    except ProgrammingError as exc:
        return getattr(exc.orig, "sqlstate", None) in ("42501",)  # insufficient_privilege
    finally:
        engine.dispose()
    return False


@pytest.mark.parametrize(("role", "statement"), FORBIDDEN, ids=[f"{r}: {s[:40]}" for r, s in FORBIDDEN])
def test_every_forbidden_action_is_refused(role_urls, role: str, statement: str) -> None:
    assert _refused(role_urls[role], statement), f"{role} was allowed: {statement}"


def test_each_stage_runs_as_its_own_role(data_dir, role_urls, caplog) -> None:
    loader = load_settings(index_url=role_urls["loader"])
    loader.ensure_dirs()
    drop(loader, "health", render("health", [child(1), child(2, involvement_end=date(2026, 1, 1)), child(3)]))
    drop(loader, "social_care", render("social_care", [child(1, "social_care", upn=None)]))
    for sector in ("health", "social_care"):
        assert run_intake(loader, ORG[sector], NIGHT)[0]["outcome"] == "accepted"
    assert link_pending(loader, NIGHT).records == 4

    reader = create_engine(role_urls["reader"])
    with reader.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reader_child")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM reader_involvement")).scalar_one() == 4
        columns = set(conn.execute(text("SELECT * FROM reader_child LIMIT 1")).keys())
        # Who to contact, by the registry's names: organisation and area.
        seen = set(conn.execute(text("SELECT organisation, organisation_name, sector, area, area_name "
                                     "FROM reader_involvement")).all())  # fmt: skip
    reader.dispose()
    assert columns == {"child_id", "given_name", "family_name", "date_of_birth", "sex", "postcode"}
    registry = loader.registry
    assert seen == {
        (o.code, o.name, o.sector, "E06000047", "County Durham")
        for o in (registry.get(ORG["health"]), registry.get(ORG["social_care"]))
    }

    retention = load_settings(index_url=role_urls["retention"])
    with caplog.at_level("WARNING", logger="childindex.retention.run"):
        cert = run_retention(retention, NIGHT + timedelta(days=retention.retention.record_unseen_days + 1))
    with create_engine(role_urls["owner"]).connect() as conn:
        version = conn.execute(text("SELECT current_setting('server_version_num')::int")).scalar_one()
    if version < 170000:  # only the owner may vacuum: retention says which tables still need it
        assert "retention may not vacuum child" in caplog.text
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["involvement_ended"]["rows_deleted"] == {"involvement": 1}
    assert rules["child_orphaned"]["rows_deleted"] == {"child": 3}
