"""Several nights of the generator's deltas through intake and linkage (no Airflow)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.linkage.evaluation import accuracy
from childindex.reports import night_summary
from childindex.simulation.synthetic import generate_night

FIRST = date(2026, 11, 24)


def _mapping(settings) -> dict[str, str]:
    with engine_for(settings.index_url).connect() as conn:
        return dict(conn.execute(text("SELECT source_key, child_id FROM source_record")).all())


def _history(settings) -> dict[str, str]:
    with engine_for(settings.index_url).connect() as conn:
        return dict(conn.execute(text("SELECT old_child_id, new_child_id FROM child_id_history")).all())


def test_four_nights_keep_ids_stable_and_accuracy_high(settings, tmp_path) -> None:
    truth = tmp_path / "truth"
    previous: dict[str, str] = {}
    sizes = []
    for k in range(4):
        night = FIRST + timedelta(days=k)
        result = generate_night(
            settings.drop_root,
            truth,
            registry=settings.registry,
            children=1500,
            seed=11,
            first_night=FIRST,
            night_number=k,
        )
        assert sum(result.rows.values()) > 0 and set(result.rows) == {o.code for o in settings.registry.organisations}
        for org in settings.registry.organisations:
            outcomes = run_intake(settings, org.code, night)
            assert {o["outcome"] for o in outcomes} <= {"accepted", "accepted_with_rejections"}
        link_pending(settings, night)
        mapping = _mapping(settings)
        history = _history(settings)
        # A record keeps its child id from night to night, unless the id was merged or split,
        # and then the history says where it went.
        for key, old_id in previous.items():
            new_id = mapping.get(key)
            assert new_id == old_id or history.get(old_id) == new_id or new_id in history.values()
        previous = mapping
        acc = accuracy(settings, truth)
        assert acc["precision"] >= 0.999, k
        assert acc["recall"] >= 0.99, k
        summary = night_summary(settings, night)
        assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"]
        sizes.append(summary["children"])
    # Corrected typos let records link that did not before: the index can shrink, and then
    # the merges are on record.
    if min(sizes[1:]) < sizes[0]:
        assert any(v for v in _history(settings).values())
    with engine_for(settings.index_url).connect() as conn:
        statuses = {r[0] for r in conn.execute(text("SELECT DISTINCT status FROM file_ledger"))}
        ended = conn.execute(text("SELECT count(*) FROM involvement WHERE end_date IS NOT NULL")).scalar_one()
    assert statuses == {"linked"}
    assert ended > 0, "leavers' end dates reach the index"
