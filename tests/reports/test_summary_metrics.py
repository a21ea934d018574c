"""The night's metrics history: per agency, rows rejected by rule and files quarantined by
rule, counts only, for the quality reports' trends."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.reports import night_summary
from tests.helpers import child, drop, render

NIGHT = date(2026, 11, 24)
CANARY = "Zqmetricscanary"


def test_rejections_and_quarantines_are_counted_by_rule(settings) -> None:
    rows = [child(i, given_name=CANARY if i == 1 else f"Given{i}") for i in range(1, 10)] + [child(10, sex="Q")]
    drop(settings, "health", render("health", rows))
    drop(settings, "education", render("education", [child(9, "education", sex="Q")]))  # every row bad
    run_intake(settings, "health", NIGHT)
    run_intake(settings, "education", NIGHT)
    link_pending(settings, NIGHT)
    summary = night_summary(settings, NIGHT)
    assert summary["agencies"]["health"]["rejected_by_rule"] == {"Gender:code_set": 1}
    assert summary["agencies"]["education"]["quarantined_by_rule"] == {"all_rows_rejected": 1}
    assert summary["agencies"]["education"]["rejected_by_rule"] == {"Sex:code_set": 1}, "why it was quarantined"
    with engine_for(settings.index_url).connect() as conn:
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": NIGHT}).all())
    assert metrics["health:rejected:code_set"] == 1
    assert metrics["health:rows_read"] == 10 and metrics["health:rows_accepted"] == 9
    assert metrics["education:quarantined:all_rows_rejected"] == 1
    assert metrics["social_care:files"] == 0
    assert 0 < metrics["health:seconds"] < 120 and 0 < metrics["education:seconds"] < 120, "intake's time per agency"
    assert metrics["social_care:seconds"] == 0
    assert not any(CANARY.lower() in name.lower() for name in metrics), "names and counts only"
    night_summary(settings, NIGHT)  # a rerun gives the same metrics, not double
    with engine_for(settings.index_url).connect() as conn:
        again = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": NIGHT}).all())
    assert again == metrics


def test_the_retention_run_for_the_nights_day_is_counted_by_rule(settings) -> None:
    from datetime import timedelta

    from childindex.retention import policy, run_retention

    drop(settings, "health", render("health", [child(i) for i in range(1, 4)]))
    run_intake(settings, "health", NIGHT)
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
