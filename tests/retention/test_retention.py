from __future__ import annotations

import json
import os
from datetime import date, timedelta

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.retention import policy, run_retention
from tests.helpers import ORG, child, drop, render
from tests.registries import TWO_HEALTH_ORGANISATIONS, use_registry_text

NIGHT = date(2026, 11, 24)


def _night(settings) -> None:
    rows = [child(1), child(2, involvement_end=date(2026, 1, 1)), child(3)]
    drop(settings, "health", render("health", rows))
    drop(settings, "education", render("education", [child(9, "education", nhs_number=None, service="Q")]))
    run_intake(settings, ORG["health"], NIGHT)
    run_intake(settings, ORG["education"], NIGHT)  # every row rejected: quarantined
    link_pending(settings, NIGHT)


def _count(settings, table: str) -> int:
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
        "skipped": None,
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
        "notice_told": 0,
        "notice_pending": 3,  # the records linkage listed for the notices stage, which did not run
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
    run_intake(settings, ORG["health"], NIGHT)  # staged, not linked
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


def test_the_policy_file_lists_every_rule_and_setting() -> None:
    from childindex.retention import policy
    from childindex.retention.rules import ROW_RULES
    from childindex.settings import RetentionSettings

    rules = policy()
    assert len({r.name for r in rules}) == len(rules)
    assert {r.name for r in rules if r.kind == "rows"} == set(ROW_RULES)
    periods = {name for name in RetentionSettings.model_fields if name.endswith("_days")}
    assert {r.setting for r in rules if r.setting} == periods
    for r in rules:
        assert r.purpose and r.deletes, r.name
        if r.setting:
            assert getattr(RetentionSettings(), r.setting) == r.period_days


def test_the_retention_docs_are_generated_from_the_policy() -> None:
    from pathlib import Path

    from childindex.retention import policy_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "retention.md").read_text()
    assert policy_markdown() in doc, "run `childindex retention --policy` and update docs/retention.md"


def test_a_child_past_the_age_served_goes_with_everything_linked(settings) -> None:
    from childindex.intake.process import run_intake
    from childindex.linkage import link_pending
    from tests.helpers import child, drop, render

    old = child(1, date_of_birth=date(2002, 1, 1))  # 24 on the night: accepted
    young = child(2, date_of_birth=date(2015, 1, 1))
    drop(settings, "health", render("health", [old, young]), night=NIGHT)
    run_intake(settings, ORG["health"], NIGHT)
    link_pending(settings, NIGHT)
    assert _count(settings, "child") == 2
    # Two years later the first is past 25 (records still fresh: only the age rule applies).
    today = date(2027, 1, 2)
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("UPDATE source_record SET last_seen = :d"), {"d": today})
    cert = run_retention(settings, today)
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["child_over_age"]["rows_deleted"]["child"] == 1
    assert rules["child_over_age"]["rows_deleted"]["source_record"] == 1
    assert rules["child_over_age"]["rows_deleted"]["involvement"] == 1
    assert _count(settings, "child") == 1 and _count(settings, "source_record") == 1


def test_decided_review_items_go_after_their_period(settings) -> None:
    from datetime import datetime

    from childindex.intake.process import run_intake
    from childindex.linkage import link_pending
    from tests.helpers import child, drop, render

    same = {"given_name": "Jack", "family_name": "Jones", "date_of_birth": date(2014, 5, 5), "sex": "M"}
    drop(settings, "health", render("health", [child(1, **same), child(2, **same)]), night=NIGHT)
    drop(settings, "social_care", render("social_care", [child(3, "social_care", nhs_number=None, upn=None, **same)]),
         night=NIGHT)  # fmt: skip
    for organisation in (ORG["health"], ORG["social_care"]):
        run_intake(settings, organisation, NIGHT)
    link_pending(settings, NIGHT)
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(
            text(
                "UPDATE review_item SET status = 'decided', resolved_at = :t "
                "WHERE id = (SELECT min(id) FROM review_item)"
            ),
            {"t": datetime(2026, 11, 25, 9, 0)},
        )
        conn.execute(text("UPDATE source_record SET last_seen = :d"), {"d": date(2027, 6, 1)})
    assert _count(settings, "review_item") == 2
    early = run_retention(settings, date(2027, 1, 1))
    assert {r["rule"]: r for r in early["rules"]}["review_resolved"]["rows_deleted"] == {"review_item": 0}
    late = run_retention(settings, date(2027, 3, 1))
    assert {r["rule"]: r for r in late["rules"]}["review_resolved"]["rows_deleted"] == {"review_item": 1}
    assert _count(settings, "review_item") == 1, "the open item stays"


def test_the_night_summary_shows_the_last_retention_run(settings) -> None:
    from childindex.reports import night_summary

    _night(settings)
    assert night_summary(settings, NIGHT)["retention"] is None
    run_retention(settings, NIGHT + timedelta(days=1))
    shown = night_summary(settings, NIGHT)["retention"]
    assert set(shown["rules"]) == {r.name for r in policy()}
    assert shown["rows_deleted"] == 0 and shown["rules"]["staging"]["cutoff"] == "2026-11-18"


def test_an_open_involvement_is_kept_while_its_organisation_still_delivers(settings) -> None:
    # Organisations send deltas: a child whose involvement goes on is not re-sent for years.
    _night(settings)
    later = NIGHT + timedelta(days=settings.retention.record_unseen_days + 30)
    drop(settings, "health", render("health", [child(5)]), night=later)  # the organisation still delivers
    run_intake(settings, ORG["health"], later)
    link_pending(settings, later)
    cert = run_retention(settings, later + timedelta(days=1))
    rules = {r["rule"]: r for r in cert["rules"]}
    # Child 2's involvement ended (and has gone): its record goes; children 1 and 3 stay.
    assert rules["record_unseen"]["rows_deleted"]["source_record"] == 1
    assert _count(settings, "source_record") == 3 and _count(settings, "child") == 3
    # Once the organisation stops delivering, the open involvements' records go as well.
    silent = later + timedelta(days=settings.retention.record_unseen_days + 1)
    cert = run_retention(settings, silent)
    assert {r["rule"]: r for r in cert["rules"]}["record_unseen"]["rows_deleted"]["source_record"] == 3
    assert _count(settings, "child") == 0


def test_merge_history_goes_once_the_child_it_leads_to_has_gone(settings) -> None:
    _night(settings)
    with engine_for(settings.index_url).begin() as conn:
        kept = conn.execute(text("SELECT min(child_id) FROM child")).scalar_one()
        rows = [("OLD1", "OLD2"), ("OLD2", "GONE"), ("OLD3", kept)]  # a dead chain and a live one
        for old, new in rows:
            conn.execute(
                text(
                    "INSERT INTO child_id_history (old_child_id, new_child_id, night, reason) VALUES (:o, :n, :d, 'x')"
                ),
                {"o": old, "n": new, "d": NIGHT},
            )
    dry = run_retention(settings, NIGHT + timedelta(days=1), dry_run=True)
    assert {r["rule"]: r for r in dry["rules"]}["history_orphaned"]["rows_deleted"] == {"child_id_history": 1}
    cert = run_retention(settings, NIGHT + timedelta(days=1))
    assert {r["rule"]: r for r in cert["rules"]}["history_orphaned"]["rows_deleted"] == {"child_id_history": 2}
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT old_child_id FROM child_id_history")).scalars().all() == ["OLD3"]


def test_ledger_metrics_and_deletion_log_keep_a_year(settings) -> None:
    _night(settings)
    run_retention(settings, NIGHT + timedelta(days=1))
    ledger = _count(settings, "file_ledger")
    assert ledger == 2 and _count(settings, "deletion_log") > 0
    year_on = NIGHT + timedelta(days=settings.retention.reports_days + 2)
    cert = run_retention(settings, year_on)
    rows = {r["rule"]: r for r in cert["rules"]}["operational_records"]["rows_deleted"]
    assert rows["file_ledger"] == 2 and rows["deletion_log"] == len(cert["rules"])
    assert _count(settings, "file_ledger") == 0
    assert _count(settings, "deletion_log") == len(cert["rules"]), "only this run's rows are left"


def test_files_are_aged_by_their_night_not_the_clock(settings) -> None:
    # A rerun, or a simulated clock, must delete the same files: receipts, quarantined files
    # and reports are dated by the ledger's night or the night in their name.
    old = NIGHT - timedelta(days=400)
    drop(settings, "health", render("health", [child(1)]), night=old)
    run_intake(settings, ORG["health"], old)
    drop(settings, "health", render("health", [child(1)]), night=old + timedelta(days=1))  # same bytes
    run_intake(settings, ORG["health"], old + timedelta(days=1))
    bad = render("health", [child(2)]).replace(b"LocalPatientID", b"PatientRef")
    drop(settings, "health", bad, night=old + timedelta(days=2))
    run_intake(settings, ORG["health"], old + timedelta(days=2))
    (settings.reports_dir / f"night-{old}.json").write_text("{}")
    dup_night = (old + timedelta(days=1)).isoformat()
    assert list(settings.archive_dir.glob(f"{ORG['health']}/{dup_night}/*/*")), "the duplicate is kept under its night"
    # Files written just now, with nights long past: the clock says new, the nights say old.
    cert = run_retention(settings, NIGHT)
    files = {r["rule"]: r["files_deleted"] for r in cert["rules"]}
    assert files["receipts"] == 6 and files["quarantine"] == 2 and files["reports"] == 1
    assert files["archive"] == 2  # the extract and the copy delivered twice
    assert not any(p.is_file() for p in settings.quarantine_dir.rglob("*"))
    assert not any(settings.quarantine_dir.glob(f"{ORG['health']}/*")), "the hash-named folder goes too"
    assert run_retention(settings, NIGHT)["files_deleted"] == 0, "a rerun deletes nothing more"


def test_retention_on_postgresql(data_dir, pg_url) -> None:
    # The production index: every row rule runs there as on SQLite, one transaction each.
    from childindex.index.db import migrate
    from childindex.settings import load_settings

    settings = load_settings(index_url=pg_url)
    settings.ensure_dirs()
    migrate(settings.index_url)
    _night(settings)
    today = NIGHT + timedelta(days=settings.retention.record_unseen_days + 1)
    dry = run_retention(settings, today, dry_run=True)
    assert dry["rows_deleted"] > 0 and _count(settings, "child") == 3, "a dry run counts, deletes nothing"
    cert = run_retention(settings, today)
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["involvement_ended"]["rows_deleted"] == {"involvement": 1}
    assert rules["record_unseen"]["rows_deleted"]["source_record"] == 3
    assert rules["child_orphaned"]["rows_deleted"] == {"child": 3}
    assert _count(settings, "child") == 0 and _count(settings, "involvement") == 0
    assert _count(settings, "deletion_log") == len(cert["rules"])


def test_the_same_bytes_quarantined_on_two_nights_go_each_with_its_own_night(settings) -> None:
    # An organisation's empty delta is the same bytes every time: quarantined twice, one folder.
    empty = render("social_care", [])
    first, second = NIGHT, NIGHT + timedelta(days=60)
    for night in (first, second):
        for i in range(3):  # an accepted history, so the empty file is a row-count anomaly
            day = night - timedelta(days=10 - i)  # (more rows than the band's slack: not a quiet night)
            rows = [child(100 * i + j, "social_care") for j in range(settings.validation.row_count_slack + 10)]
            drop(settings, "social_care", render("social_care", rows), night=day)
            run_intake(settings, ORG["social_care"], day)
        drop(settings, "social_care", empty, night=night)
        assert run_intake(settings, ORG["social_care"], night)[0]["outcome"] == "rejected"
    folder = next(settings.quarantine_dir.glob(f"{ORG['social_care']}/*"))
    assert len([p for p in folder.iterdir() if p.suffix == ".txt"]) == 2
    cert = run_retention(settings, second + timedelta(days=1))
    assert {r["rule"]: r for r in cert["rules"]}["quarantine"]["files_deleted"] == 1, "the first night's file"
    assert sorted(p.name for p in folder.iterdir()) == ["quarantine.json", "sc_extract_20270123.txt"]


def test_unseen_records_go_per_organisation_when_it_has_sent_nothing_since(data_dir, tmp_path, monkeypatch) -> None:
    from childindex.index.db import migrate

    settings = use_registry_text(monkeypatch, tmp_path, TWO_HEALTH_ORGANISATIONS)
    migrate(settings.index_url)
    # Night 1: both organisations of one sector send open involvements; child 1 is known
    # to both (its old and new trust), children 2 and 3 to one each.
    drop(settings, "RH1", render("health", [child(1), child(2)]), night=NIGHT)
    drop(settings, "RX2", render("health", [child(1, local_id="X0000001"), child(3)]), night=NIGHT)
    for code in ("RH1", "RX2"):
        run_intake(settings, code, NIGHT)
    link_pending(settings, NIGHT)
    assert _count(settings, "source_record") == 4 and _count(settings, "child") == 3
    # Past the period: RH1 still delivers (its open involvements are not re-sent), RX2 is silent.
    later = NIGHT + timedelta(days=settings.retention.record_unseen_days + 30)
    drop(settings, "RH1", render("health", [child(5)]), night=later)
    run_intake(settings, "RH1", later)
    link_pending(settings, later)
    cert = run_retention(settings, later + timedelta(days=1))
    rules = {r["rule"]: r for r in cert["rules"]}
    assert rules["record_unseen"]["rows_deleted"]["source_record"] == 2
    assert rules["record_unseen"]["rows_deleted"]["involvement"] == 2
    assert rules["child_orphaned"]["rows_deleted"] == {"child": 1}  # child 3: only RX2 knew them
    with engine_for(settings.index_url).connect() as conn:
        left = conn.execute(text("SELECT organisation, count(*) FROM source_record GROUP BY organisation")).all()
    assert dict(left) == {"RH1": 3}
    assert _count(settings, "child") == 3  # children 1, 2 and 5
