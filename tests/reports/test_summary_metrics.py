"""The night's metrics history: per sector and per organisation, rows rejected by rule and
files quarantined by rule, counts only, for the quality reports' trends."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.reports import night_summary
from tests.helpers import ORG, child, drop, render
from tests.registries import TWO_HEALTH_ORGANISATIONS, use_registry_text

NIGHT = date(2026, 11, 24)
CANARY = "Zqmetricscanary"


def test_rejections_and_quarantines_are_counted_by_rule(settings) -> None:
    rows = [child(i, given_name=CANARY if i == 1 else f"Given{i}") for i in range(1, 10)] + [child(10, service="Q")]
    rows.append(child(11, postcode="QZ99 CANARY"))  # kept, its postcode set aside (missing_identity: stage)
    drop(settings, "health", render("health", rows))
    drop(settings, "education", render("education", [child(9, "education", service="Q")]))  # every row bad
    run_intake(settings, ORG["health"], NIGHT)
    run_intake(settings, ORG["education"], NIGHT)
    link_pending(settings, NIGHT)
    summary = night_summary(settings, NIGHT)
    for entry in (summary["organisations"][ORG["health"]], summary["sectors"]["health"]):
        assert entry["rejected_by_rule"] == {"ServiceCode:code_set": 1}
        assert entry["set_aside_by_rule"] == {"Postcode:postcode_format": 1}
    for entry in (summary["organisations"][ORG["education"]], summary["sectors"]["education"]):
        assert entry["quarantined_by_rule"] == {"all_rows_rejected": 1}
        # Why it was quarantined, apart: its row is not loaded, not a rejected row (docs/reports.md).
        assert entry["quarantined_rows_by_rule"] == {"Provision:code_set": 1} and entry["rejected_by_rule"] == {}
        assert (entry["rows_read"], entry["rows_rejected"], entry["rows_quarantined"]) == (1, 0, 1)
    with engine_for(settings.index_url).connect() as conn:
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": NIGHT}).all())
    health, education, social_care = (f"org:{ORG[s]}" for s in ("health", "education", "social_care"))
    for prefix in ("health", health):
        assert metrics[f"{prefix}:rejected:code_set"] == 1
        assert metrics[f"{prefix}:set_aside:postcode_format"] == 1
        assert metrics[f"{prefix}:rows_read"] == 11 and metrics[f"{prefix}:rows_accepted"] == 10
    for prefix in ("education", education):
        assert metrics[f"{prefix}:quarantined:all_rows_rejected"] == 1
    for prefix in ("social_care", social_care):
        assert metrics[f"{prefix}:files"] == 0 and metrics[f"{prefix}:seconds"] == 0
    for prefix in ("health", "education", health, education):
        assert 0 < metrics[f"{prefix}:seconds"] < 120, "intake's time per sector and organisation"
    assert not any(CANARY.lower() in name.lower() for name in metrics), "names and counts only"
    night_summary(settings, NIGHT)  # a rerun gives the same metrics, not double
    with engine_for(settings.index_url).connect() as conn:
        again = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": NIGHT}).all())
    assert again == metrics


def test_the_retention_run_for_the_nights_day_is_counted_by_rule(settings) -> None:
    from datetime import timedelta

    from childindex.retention import policy, run_retention

    drop(settings, "health", render("health", [child(i) for i in range(1, 4)]))
    run_intake(settings, ORG["health"], NIGHT)
    link_pending(settings, NIGHT)
    # Everything is a year old by the clock of this run: files and rows go.
    later = NIGHT + timedelta(days=4000)
    run_retention(settings, later, dry_run=True)  # a dry run deletes nothing and is not counted
    run_retention(settings, later)
    run_retention(settings, later)  # a rerun of the day: nothing more to delete
    night_summary(settings, later)
    with engine_for(settings.index_url).connect() as conn:
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": later}).all())
        logged = conn.execute(
            text("SELECT sum(rows_deleted), sum(files_deleted) FROM deletion_log WHERE run_for = :d AND dry_run = 0"),
            {"d": later},
        ).one()
    rules = [r.name for r in policy()]
    assert {n for n in metrics if n.startswith("retention:")} == {
        f"retention:{r}:{kind}" for r in rules for kind in ("rows", "files")
    }
    assert sum(v for n, v in metrics.items() if n.startswith("retention:") and n.endswith(":rows")) == logged[0] > 0
    assert sum(v for n, v in metrics.items() if n.startswith("retention:") and n.endswith(":files")) == logged[1] > 0
    # The night before had no retention run: no retention metrics, not zeros.
    night_summary(settings, NIGHT)
    with engine_for(settings.index_url).connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM night_metric WHERE night = :n"), {"n": NIGHT})]
    assert not any(n.startswith("retention:") for n in names)


SEVERAL_ORGANISATIONS = (
    TWO_HEALTH_ORGANISATIONS
    + """
  - {code: "840", name: Durham education (synthetic), sector: education, contract: education_mis, areas: [E06000047]}
  - {code: "841", name: Darlington education (synthetic), sector: education, contract: education_mis,
     areas: [E06000005]}
  - {code: E06000047, name: Durham social care (synthetic), sector: social_care, contract: social_care_cms,
     areas: [E06000047]}
"""
)


def test_the_summary_names_silent_organisations_unregistered_drops_and_sector_totals(
    data_dir, tmp_path, monkeypatch
) -> None:
    from childindex.index.db import migrate
    from childindex.reports import build_report

    settings = use_registry_text(monkeypatch, tmp_path, SEVERAL_ORGANISATIONS)
    migrate(settings.index_url)
    # Both health trusts send (child 1 is known to both: it moved), one of two education
    # services; social care and Darlington's education send nothing.
    drop(
        settings,
        "RH1",
        render("health", [child(1), child(2), *(child(i) for i in range(6, 13)), child(3, service="Q")]),
    )
    drop(settings, "RX2", render("health", [child(1, local_id="X0000001", postcode="DL1 1AA"), child(4)]))
    drop(settings, "840", render("education", [child(5, "education")]))
    # Files in folders no registered organisation owns: never read, only reported.
    stray = settings.drop_root / "RZZ"
    stray.mkdir(parents=True)
    (stray / "health_2026-11-24.csv").write_bytes(b"x")
    (stray / "health_2026-11-24.csv.done").touch()
    (settings.drop_root / "loose.csv").write_bytes(b"x")
    (settings.drop_root / ".hidden").mkdir()
    for code in ("RH1", "RX2", "840", "841", "E06000047"):
        run_intake(settings, code, NIGHT)
    link_pending(settings, NIGHT)
    summary = night_summary(settings, NIGHT)

    assert summary["organisations_registered"] == 5 and summary["organisations_sending"] == 3
    assert summary["organisations_silent"] == ["841", "E06000047"]  # in registry order
    assert summary["unregistered_drops"] == [{"folder": "RZZ", "files": 2}, {"folder": ".", "files": 1}]
    assert (stray / "health_2026-11-24.csv").exists(), "never touched"
    orgs = summary["organisations"]
    assert set(orgs) == {"RH1", "RX2", "840", "841", "E06000047"}
    assert (orgs["RH1"]["rows_read"], orgs["RH1"]["rows_rejected"], orgs["RX2"]["rows_read"]) == (10, 1, 2)
    assert orgs["841"]["files"] == 0 and orgs["841"]["sector"] == "education"
    sectors = summary["sectors"]
    assert set(sectors) == {"health", "education", "social_care"}
    health = sectors["health"]
    assert (health["organisations"], health["organisations_silent"], health["files"]) == (2, 0, 2)
    assert (health["rows_read"], health["rows_accepted"], health["rows_rejected"]) == (12, 11, 1)
    assert health["rejected_by_rule"] == {"ServiceCode:code_set": 1}
    education = sectors["education"]
    assert (education["organisations"], education["organisations_silent"], education["files"]) == (2, 1, 1)
    assert education["rows_read"] == 1
    social_care = sectors["social_care"]
    assert (social_care["organisations"], social_care["organisations_silent"], social_care["files"]) == (1, 1, 0)
    assert summary["files_in"] == 3 and summary["rows_read"] == 13
    # Child 1: two organisations of one sector, in two areas.
    assert summary["children_in_several_organisations"] == 1
    assert summary["children_in_several_areas"] == 1

    with engine_for(settings.index_url).connect() as conn:
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": NIGHT}).all())
    assert metrics["health:files"] == 2 and metrics["health:rows_read"] == 12
    assert metrics["education:organisations_silent"] == 1 and metrics["social_care:organisations_silent"] == 1
    assert metrics["org:RX2:rows_read"] == 2 and metrics["org:841:files"] == 0
    assert metrics["organisations_sending"] == 3 and metrics["organisations_registered"] == 5
    # The report says who sent nothing.
    html = build_report(settings, NIGHT).read_text(encoding="utf-8")
    assert "education: 1 organisation(s) sent no file" in html
    assert "social_care: 1 organisation(s) sent no file" in html
    assert "health: 1 organisation(s) sent no file" not in html


def test_the_night_records_the_band_links_cluster_sizes_and_thresholds_the_trends_need(settings) -> None:
    """What the report's per-organisation trends and linkage charts read, recorded per night
    as counts: the row-count band intake applied, records linked or making a new child, the
    children by number of records, and the thresholds linkage used."""
    import pytest

    from childindex.errors import FileRejected
    from childindex.validation.policy import check_row_count
    from tests.reports.test_reports import _nights

    last = _nights(settings)  # health sends 8, 9, 8 rows, then 8; social care 1 a night
    summary = night_summary(settings, last)
    health, social = summary["organisations"][ORG["health"]], summary["organisations"][ORG["social_care"]]
    # The band the night's file met: the median of the 3 loaded files before it (8), /3 and
    # *3, or within 50 rows: 0 to 58. The same as intake's own check at its edges.
    assert (health["row_band_low"], health["row_band_high"]) == (0, 58)
    check_row_count(settings, 58, [8, 9, 8])
    with pytest.raises(FileRejected):
        check_row_count(settings, 59, [8, 9, 8])
    assert (social["row_band_low"], social["row_band_high"]) == (0, 51)
    assert "row_band_low" not in summary["organisations"][ORG["education"]], "no loaded file yet: no band"
    # Tonight's records: health's 7 loaded (children new tonight), one of them linked to social
    # care's one record (the same child).
    assert [health[k] for k in ("records_tonight", "records_linked_to_another", "records_new_child")] == [7, 1, 7]
    assert [social[k] for k in ("records_tonight", "records_linked_to_another", "records_new_child")] == [1, 1, 1]
    with engine_for(settings.index_url).connect() as conn:
        sizes = dict(conn.execute(text(
            "SELECT n, count(*) FROM (SELECT count(*) AS n FROM source_record GROUP BY child_id) s GROUP BY n"
        )).all())  # fmt: skip
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": last}).all())
    assert summary["cluster_sizes"] == {str(n): k for n, k in sizes.items()}
    assert sum(sizes.values()) == summary["children"] and max(sizes) < 10
    assert {k: v for k, v in metrics.items() if k.startswith("cluster_size_")} == {
        f"cluster_size_{n:02d}": k for n, k in sizes.items()
    }
    assert (metrics["linkage_match_threshold"], metrics["linkage_review_threshold"]) == (0.95, 0.5)
    assert (summary["linkage"]["match_threshold"], summary["linkage"]["review_threshold"]) == (0.95, 0.5)
    org_ = f"org:{ORG['health']}"
    assert metrics[f"{org_}:row_band_high"] == 58 and metrics[f"{org_}:records_linked_to_another"] == 1
