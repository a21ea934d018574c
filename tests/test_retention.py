from __future__ import annotations

import json
import os
from datetime import date, timedelta

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake import run_intake
from childindex.linkage import link_pending
from childindex.retention import run_retention
from tests.helpers import child, drop, render

NIGHT = date(2026, 11, 24)


def _night(settings) -> None:  # noqa: ANN001
    rows = [child(1), child(2, involvement_end=date(2026, 1, 1)), child(3)]
    drop(settings, "health", render("health", rows))
    drop(settings, "education", render("education", [child(9, "education", nhs_number=None, sex="Q")]))
    run_intake(settings, "health", NIGHT)
    run_intake(settings, "education", NIGHT)  # every row rejected: quarantined
    link_pending(settings, NIGHT)


def _count(settings, table: str) -> int:  # noqa: ANN001
    with engine_for(settings.index_url).connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_nothing_is_deleted_on_the_night_itself(settings) -> None:
    _night(settings)
    cert = run_retention(settings, NIGHT + timedelta(days=1))
    assert cert["rows_deleted"] == 0 and cert["files_deleted"] == 0
    assert _count(settings, "child") == 3


def test_ended_involvement_goes_after_its_period(settings) -> None:
    _night(settings)
    today = date(2026, 1, 1) + timedelta(days=settings.retention.involvement_ended_days + 1)
    dry = run_retention(settings, today, dry_run=True)
    assert dry["rules"][0]["rows_deleted"] == {"involvement": 1}
    assert _count(settings, "involvement") == 3, "a dry run deletes nothing"
    cert = run_retention(settings, today)
    assert cert["rules"][0] == {
        "rule": "involvement_ended",
        "cutoff": (today - timedelta(days=365)).isoformat(),
        "rows_deleted": {"involvement": 1},
        "files_deleted": 0,
    }
    assert _count(settings, "involvement") == 2
    again = run_retention(settings, today)
    assert again["rules"][0]["rows_deleted"] == {"involvement": 0}, "idempotent"


def test_unseen_records_children_and_files_go(settings) -> None:
    _night(settings)
    old = NIGHT - timedelta(days=1000)
    stamp = (old - date(1970, 1, 1)).days * 86400
    for root in (settings.quarantine_dir, settings.outbox_root):
        for p in root.rglob("*"):
            if p.is_file():
                os.utime(p, (stamp, stamp))
    today = NIGHT + timedelta(days=settings.retention.record_unseen_days + 1)
    cert = run_retention(settings, today)
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["involvement_ended"]["rows_deleted"] == {"involvement": 1}
    assert rules["record_unseen"]["rows_deleted"] == {
        "involvement": 2,
        "review_item": 0,
        "source_record": 3,
        "link_decision": 0,
    }
    assert rules["child_orphaned"]["rows_deleted"] == {"child": 3}
    assert rules["archive"]["files_deleted"] == 1
    assert rules["staging"]["files_deleted"] == 1
    assert rules["quarantine"]["files_deleted"] == 2  # the file and its quarantine note
    assert rules["receipts"]["files_deleted"] == 4  # JSON + text, two files
    assert _count(settings, "child") == 0 and _count(settings, "source_record") == 0
    written = json.loads((settings.reports_dir / "retention" / f"certificate-{today}.json").read_text())
    assert written["rows_deleted"] == cert["rows_deleted"]
    assert _count(settings, "deletion_log") == len(cert["rules"])


def test_unlinked_staging_is_never_deleted(settings) -> None:
    drop(settings, "health", render("health", [child(1)]))
    run_intake(settings, "health", NIGHT)  # staged, not linked
    cert = run_retention(settings, NIGHT + timedelta(days=100))
    assert {r["rule"]: r for r in cert["rules"]}["staging"]["files_deleted"] == 0
    assert list(settings.staging_dir.rglob("*.parquet"))


def test_working_files_only_go_once_a_day_old(settings) -> None:
    fresh = settings.work_dir / "validate-running" / "work.duckdb"
    stale = settings.work_dir / "validate-crashed" / "work.duckdb"
    for p in (fresh, stale):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    old = (NIGHT - timedelta(days=3) - date(1970, 1, 1)).days * 86400
    os.utime(stale, (old, old))
    cert = run_retention(settings, NIGHT)
    assert {r["rule"]: r for r in cert["rules"]}["working_files"]["files_deleted"] == 1
    assert fresh.exists() and not stale.exists()
