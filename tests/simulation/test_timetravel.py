"""Twenty simulated years: nothing outlives its policy, nothing in use is deleted, the index
stays bounded. The audit itself is shown to catch what it looks for."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.organisations import load_registry
from childindex.simulation.synthetic.lifecourse import NEVER, Lifecourse
from childindex.simulation.timetravel import audit, simulate
from tests.conftest import TEST_REGISTRY
from tests.helpers import ORG

NIGHT = date(2026, 11, 24)


@pytest.fixture()
def small_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    # A few hundred children's deltas vary a lot in size; an empty one is still quarantined.
    monkeypatch.setenv("CHILDINDEX_VALIDATION__ROW_COUNT_FACTOR", "1000")


def test_twenty_years_of_deliveries_keep_every_policy(small_deltas, settings) -> None:
    from childindex.settings import load_settings

    settings = load_settings()
    # Half-yearly deliveries: every policy still comes due many times over, at half the cost
    # of quarterly ones (each delivery is a real intake, GX included, and a real link).
    result = simulate(settings, years=20, children=200, delivery_days=182, retention_days=28, high_noise=True)
    assert result.violations == []
    assert result.reviews_decided > 0 and result.rows_deleted["review_resolved"]["review_item"] > 0
    assert result.deliveries == 41 and result.retention_runs == 261
    assert result.files.get("accepted", 0) >= 100
    # Every kind of row and file the policy names was deleted at some point.
    for rule, table in [
        ("involvement_ended", "involvement"),
        ("record_unseen", "source_record"),
        ("child_orphaned", "child"),
        ("operational_records", "file_ledger"),
        ("operational_records", "deletion_log"),
        ("notice_ledger", "notice_ledger"),
        ("record_unseen", "notice_told"),
    ]:
        assert result.rows_deleted[rule][table] > 0, (rule, table)
    # Children move and organisations learn of each other over the years: notices go out.
    assert result.notices > 0
    for rule in ("archive", "staging", "receipts", "notices", "reports"):
        assert result.files_deleted[rule] > 0, rule
    # Bounded: the base population ages out as fast as children are born.
    assert result.first is not None and result.final is not None
    assert result.peak["children"] <= 1.5 * result.first.children
    assert result.final.children <= 1.3 * result.first.children
    assert result.peak["rows"] <= 3 * result.first.rows  # ledger and logs fill a year, then level
    # Deleted means gone from disk too: no staging file, receipt or archive outlived its rule.
    assert len(list(settings.staging_dir.rglob("*.parquet"))) <= 3 * 3
    assert len(list(settings.archive_dir.rglob("*.*"))) <= 3 * 3


def test_the_audit_finds_what_outlived_its_policy(settings) -> None:
    today = NIGHT + timedelta(days=1000)
    assert audit(settings, today) == []
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("INSERT INTO child VALUES ('C1','A','B',:d,'F','LS6 2AB',:d,:d)"), {"d": date(2015, 1, 1)})
        conn.execute(
            text(
                "INSERT INTO source_record (source_key, organisation, child_id, match_key, first_seen, last_seen) "
                "VALUES (:k, :o, 'C1', :k, :d, :d)"
            ),
            {"k": "a" * 64, "o": ORG["health"], "d": NIGHT},
        )
        conn.execute(
            text(
                "INSERT INTO involvement (source_key, child_id, organisation, sector, area, service, contact_route, "
                "start_date, end_date, last_seen) "
                "VALUES (:k, 'C1', :o, 'health', 'E06000047', 'school_nursing', '0113 496 0001', :s, :e, :s)"
            ),
            {"k": "a" * 64, "o": ORG["health"], "s": NIGHT, "e": NIGHT + timedelta(days=10)},
        )
    receipt = settings.outbox(ORG["health"]) / "health_2026-11-24.csv.0123abcd.receipt.json"
    receipt.write_text("{}")
    notice = settings.outbox(ORG["health"]) / "notices" / "notices-2026-11-24.json"
    notice.parent.mkdir()
    notice.write_text("{}")
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("INSERT INTO notice_told VALUES (:k, :g, :d)"), {"k": "a" * 64, "g": "b" * 64, "d": NIGHT})
    found = audit(settings, today)
    assert "1 x notice file past its period" in found
    assert "1 x what a notice told of a record that has gone, or a notice pending for one" in found
    assert "1 x an involvement ended past its period" in found
    assert "1 x a record unseen past its period, with its involvement over or its organisation silent" in found
    assert "1 x receipt past its period" in found
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(text("DELETE FROM notice_told"))
    assert audit(settings, NIGHT + timedelta(days=20)) == []


def test_the_life_course_is_deterministic_and_sends_only_changes(tmp_path) -> None:
    registry = load_registry(TEST_REGISTRY)
    a, b = Lifecourse(100, 3, registry=registry, seed=5), Lifecourse(100, 3, registry=registry, seed=5)
    for sector in a.intervals:
        assert (a.intervals[sector].start == b.intervals[sector].start).all()
    rows0, truth0 = a.deliver(tmp_path / "a", 0)
    assert set(rows0) == set(ORG.values())
    assert sum(rows0.values()) == a.open_involvements(0) == truth0.num_rows
    rows1, _ = a.deliver(tmp_path / "a", 91)
    health = a.intervals["health"]
    starts = int(((health.start > 0) & (health.start <= 91)).sum())
    ends = int(((health.end > 0) & (health.end <= 91) & (health.start <= 91)).sum())
    code = ORG["health"]
    assert starts >= 1 and rows1[code] >= starts + ends - 1  # births, leavers (and movers)
    assert rows1[code] < rows0[code] / 2, "a delta, not a full extract"
    # Births keep the population steady: about children/18 a year.
    born = int((a.dob_night > 0).sum())
    assert 10 <= born <= 25
    assert (health.end[health.start != NEVER] > health.start[health.start != NEVER]).all()
    with pytest.raises(ValueError, match="forward"):
        a.deliver(tmp_path / "a", 91)


def test_the_command_runs_a_simulation_and_refuses_a_used_folder(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from childindex.cli import app

    runner = CliRunner()
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(TEST_REGISTRY))
    out = tmp_path / "result.json"
    args = ["time-travel", "--data-dir", str(tmp_path / "tt"), "--years", "1", "--children", "60"]
    result = runner.invoke(app, [*args, "--delivery-days", "182", "--retention-days", "91", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "nothing outlived its policy" in result.output
    data = json.loads(out.read_text())
    assert data["deliveries"] == 3 and data["retention_runs"] == 5 and data["violations"] == []
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "deletes data" in again.output
