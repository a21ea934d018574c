"""Task bodies and a run's night, without Airflow running: plain values in, counts out."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest

from childindex.errors import IndexUnavailable, KeyMismatch
from childindex.orchestration import context_day, context_night, intake_one, night_of, totals
from tests.helpers import ORG


def test_a_run_serves_the_night_before_its_date() -> None:
    assert night_of(datetime(2026, 11, 25, 2, 0)) == date(2026, 11, 24)
    assert night_of(datetime(2026, 3, 1, 0, 30)) == date(2026, 2, 28)
    assert type(night_of(datetime(2026, 11, 25))) is date  # never a pendulum or datetime
    with pytest.raises(ValueError, match="logical date"):
        night_of(None)


def test_an_asset_triggered_run_takes_its_night_from_run_after() -> None:
    run = SimpleNamespace(run_after=datetime(2026, 11, 25, 3, 15))
    assert context_night({"dag_run": run, "logical_date": None}) == date(2026, 11, 24)
    assert context_night({"dag_run": run, "logical_date": datetime(2026, 11, 20, 2)}) == date(2026, 11, 19)
    assert context_day({"dag_run": run}) == date(2026, 11, 25)


def test_totals_count_files_rows_quarantines_and_organisations() -> None:
    results = [
        {"organisation": "RH1", "outcome": "accepted", "rows_read": 10, "rows_accepted": 10, "rows_rejected": 0},
        {"organisation": "840", "outcome": "rejected", "rows_read": 4, "rows_accepted": 0, "rows_rejected": 4},
        {"organisation": "RH1", "outcome": "gone"},
    ]
    assert totals(results) == {
        "rows_read": 14,
        "rows_accepted": 10,
        "rows_rejected": 4,
        "files": 3,
        "files_quarantined": 1,
        "organisations": 2,
    }
    assert totals([]) == {
        "rows_read": 0,
        "rows_accepted": 0,
        "rows_rejected": 0,
        "files": 0,
        "files_quarantined": 0,
        "organisations": 0,
    }


def test_a_file_an_earlier_try_handled_is_gone_not_an_error(settings) -> None:
    code = ORG["health"]
    out = intake_one(code, str(settings.drop_folder(code) / "health_2026-11-24.csv"), date(2026, 11, 24))
    assert out == {"organisation": code, "outcome": "gone", "rows_read": 0, "rows_accepted": 0, "rows_rejected": 0}


def test_errors_from_a_task_carry_its_stage_and_night(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import child, drop, render

    night = date(2026, 11, 24)
    path = drop(settings, "health", render("health", [child(1)]), night=night)
    # A stranger key: terminal, named by stage and night.
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", "another-key-" + "0" * 40)
    from childindex.keys import check_key
    from childindex.settings import load_settings

    check_key(settings.index_url, settings.key, night)  # the index knows the first key
    with pytest.raises(KeyMismatch) as refused:
        intake_one(ORG["health"], str(path), night)
    assert (refused.value.stage, refused.value.night) == ("keys", night)
    assert path.exists()
    # An index that cannot be opened: transient, so Airflow retries it.
    monkeypatch.setenv("CHILDINDEX_INDEX_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    assert load_settings().index_url.endswith(":9/none?connect_timeout=2")
    with pytest.raises(IndexUnavailable) as unavailable:
        intake_one(ORG["health"], str(path), night)
    assert (unavailable.value.stage, unavailable.value.night) == ("intake", night)
    assert path.exists()
