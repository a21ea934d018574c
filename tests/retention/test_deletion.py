"""Deleted means gone: a child's values, aged past every policy, are nowhere on disk."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.retention import run_retention
from tests.helpers import ORG, child, drop, killed_intake, nhs, render

NIGHT = date(2026, 11, 24)
CANARY = {
    "given_name": "Zqgonegiven",
    "family_name": "Zqgonefamily",
    "contact_route": "zq-gone-route@example.org",
}


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _found(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    hits = []
    for path in _files(root):
        data = path.read_bytes()
        for needle in needles:
            for encoding in ("utf-8", "utf-16-le"):
                if needle.encode(encoding) in data:
                    hits.append((str(path.relative_to(root)), needle))
    return hits


def test_a_child_aged_past_every_policy_leaves_no_trace(settings) -> None:
    number = nhs(777)
    gone = child(777, nhs_number=number, **CANARY)
    # Health and social care both know the child (a link). Of two later health files, one
    # is quarantined (its id column is misnamed) and one is staged but never linked (a
    # linkage that stopped running): both carry the values.
    drop(settings, "health", render("health", [gone, child(2)]), night=NIGHT)
    drop(settings, "social_care", render("social_care", [child(777, "social_care", upn=None, **CANARY)]), night=NIGHT)
    for organisation in (ORG["health"], ORG["social_care"]):
        run_intake(settings, organisation, NIGHT)
    link_pending(settings, NIGHT)
    bad = render("health", [gone]).replace(b"LocalPatientID", b"PatientRef")
    drop(settings, "health", bad, night=NIGHT + timedelta(days=1))
    run_intake(settings, ORG["health"], NIGHT + timedelta(days=1))
    drop(settings, "health", render("health", [gone, child(3)]), night=NIGHT + timedelta(days=2))
    run_intake(settings, ORG["health"], NIGHT + timedelta(days=2))
    assert any(settings.quarantine_dir.rglob("*.csv")) and len(list(settings.staging_dir.rglob("*.parquet"))) == 3
    # A last intake is killed as it writes its staging file, and the organisation then takes
    # the file back: its half-made staging file and intake's copy are left behind.
    late = drop(settings, "health", render("health", [gone, child(4)]), night=NIGHT + timedelta(days=3))
    killed_intake(ORG["health"], NIGHT + timedelta(days=3))
    late.unlink()
    late.with_name(late.name + ".done").unlink(missing_ok=True)
    assert list(settings.staging_dir.rglob("*.tmp")), "the killed intake left debris"
    # And an upload that never got its completion marker: never read, but on disk.
    drop(settings, "health", render("health", [gone]), night=NIGHT + timedelta(days=4), complete=False)
    needles = [*CANARY.values(), number, "H0000777"]
    assert _found(settings.data_dir, needles), "the values are on disk before retention"

    cert = run_retention(settings, NIGHT + timedelta(days=365 * 30))
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["staging_unlinked"]["files_deleted"] == 1 and rules["quarantine"]["files_deleted"] >= 1
    assert cert["rows_deleted"] > 0
    assert _found(settings.data_dir, needles) == []
    # Nothing a killed run left: no temporary file, no staging file the ledger does not name
    # (a Parquet file's values are compressed: no byte search would find them there).
    assert [p for p in settings.data_dir.rglob("*") if p.is_file() and p.suffix in (".tmp", ".parquet")] == []
    # And the index file itself holds no free pages with old rows (secure_delete, VACUUM).
    index = Path(settings.index_url.split("///", 1)[1])
    assert index.exists() and not any(n.encode() in index.read_bytes() for n in needles)
    # The ledger no longer offers the expired file to linkage.
    assert link_pending(settings, NIGHT + timedelta(days=365 * 30)).files == 0


def test_on_postgresql_retention_leaves_no_trace_in_the_tables_files(data_dir, pg_url) -> None:
    # PostgreSQL keeps deleted tuples in a table's pages until VACUUM: retention vacuums the
    # tables it deleted from, so after it no file of the database holds the child's values.
    import pytest
    from sqlalchemy import create_engine

    from childindex.index.db import migrate
    from childindex.settings import load_settings

    settings = load_settings(index_url=pg_url)
    settings.ensure_dirs()
    migrate(settings.index_url)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            root = Path(conn.execute(text("SHOW data_directory")).scalar_one())
            oid = conn.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar_one()
        base = root / "base" / str(oid)
        try:
            files = _files(base)
        except PermissionError:
            pytest.skip(f"PostgreSQL's data directory {root} is not readable here")
        assert files
        drop(
            settings, "health", render("health", [child(777, **CANARY), *(child(i) for i in range(2, 40))]), night=NIGHT
        )
        run_intake(settings, ORG["health"], NIGHT)
        link_pending(settings, NIGHT)
        needles = [CANARY["given_name"], CANARY["family_name"]]

        def on_disk() -> list[tuple[str, str]]:
            with admin.connect() as conn:
                conn.execute(text("CHECKPOINT"))  # pages reach the files
            return _found(base, needles)

        assert on_disk(), "the values are in the table's files before retention"
        with engine_for(settings.index_url).begin() as conn:  # only the canary child ages past its rules
            conn.execute(
                text("UPDATE source_record SET last_seen = :d WHERE lower(given_name) = :g"),
                {"d": NIGHT - timedelta(days=1000), "g": CANARY["given_name"].lower()},
            )
            conn.execute(
                text("UPDATE involvement SET end_date = :d WHERE source_key IN "
                     "(SELECT source_key FROM source_record WHERE last_seen < :d2)"),
                {"d": NIGHT - timedelta(days=1000), "d2": NIGHT},
            )  # fmt: skip
        cert = run_retention(settings, NIGHT + timedelta(days=1))
        assert {r["rule"]: r for r in cert["rules"]}["child_orphaned"]["rows_deleted"] == {"child": 1}
        assert on_disk() == []
    finally:
        admin.dispose()
