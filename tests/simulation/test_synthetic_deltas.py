"""Nightly deltas, determinism and output hygiene."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from childindex.contracts import load_contract
from childindex.simulation.synthetic import build_population, generate_night
from childindex.simulation.synthetic import extracts as E
from childindex.simulation.synthetic import names as T
from childindex.whitelist import SECTORS
from tests.simulation.synthetic_helpers import CHILDREN, FIRST_NIGHT, as_dates


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_night_dates_and_growth(run):
    assert run.nights[0].night == FIRST_NIGHT
    assert run.nights[1].night == FIRST_NIGHT + timedelta(days=1)
    assert run.nights[0].children == CHILDREN
    assert run.nights[1].children > CHILDREN
    later = build_population(CHILDREN, seed=42, first_night=FIRST_NIGHT, night_number=3)
    assert later.children > run.nights[1].children


def test_delta_is_small_and_only_new_or_changed(run):
    for sector in SECTORS:
        code = run.code(sector)
        rows = run.nights[1].rows[code]
        assert 0 < rows < 0.01 * run.nights[0].rows[code] + 20
        before = run.extract(0, sector)
        after = run.extract(1, sector)
        key = load_contract(run.contract(sector)).column_for("local_id").name
        merged = after.merge(before, on=key, how="left", suffixes=("", "_before"), indicator=True)
        new = merged["_merge"] == "left_only"
        cols = [c for c in after.columns if c != key]
        same = np.column_stack([(merged[c] == merged[c + "_before"]).to_numpy() for c in cols])
        assert (new | ~same.all(axis=1)).all(), sector


def test_local_ids_stable(run):
    t0, t1 = run.truth(0), run.truth(1)
    # A local id always names the same child ...
    both = t1.merge(t0, on=["organisation", "local_id"], suffixes=("", "_0"))
    assert len(both) > 0
    assert (both["person_id"] == both["person_id_0"]).all()
    # ... and a child re-sent keeps theirs (a duplicate registration is made with the record, never later).
    ids0 = t0.groupby(["organisation", "person_id"])["local_id"].agg(frozenset)
    ids1 = t1.groupby(["organisation", "person_id"])["local_id"].agg(frozenset)
    common = ids1.index.intersection(ids0.index)
    assert len(common) > 0 and all(ids1[k] <= ids0[k] for k in common)
    for truth in (t0, t1):
        assert not truth.duplicated(["organisation", "local_id"]).any()
        # One record per child and organisation, but for a few duplicate registrations (one
        # area: no cross-authority move makes another).
        per = truth.groupby(["organisation", "person_id"]).size()
        assert per.max() <= 2 and (per == 2).mean() < 0.01


def test_births_are_new_health_records(run):
    t1 = run.truth(1)
    born = t1[(t1.organisation == run.code("health")) & (t1.person_id >= CHILDREN)]
    assert len(born) >= 1
    health = run.joined(1, "health").set_index("person_id").loc[born.person_id]
    fmt = load_contract(run.contract("health")).date_format
    night = pd.Timestamp(run.nights[1].night)
    assert (as_dates(health["involvement_start"], fmt) == night).all()
    dob = as_dates(health["true_date_of_birth"].dt.strftime(fmt), fmt)
    assert ((night - dob).dt.days.between(1, 10)).all()
    assert (health["service"] == "health_visiting").all()


def test_new_cases_admissions_moves_leavers_corrections(run):
    t0, t1 = run.truth(0), run.truth(1)
    night = pd.Timestamp(run.nights[1].night)
    for sector in ("social_care", "education"):
        code = run.code(sector)
        known = set(t0.loc[t0.organisation == code, "person_id"])
        assert set(t1.loc[t1.organisation == code, "person_id"]) - known, sector
    # Moves: the child's postcode changed and the row was re-sent.
    moved = np.flatnonzero(run.populations[1].addr_ver[:CHILDREN] > 0)
    assert len(moved) >= 1
    # (A duplicate registration lives at the same address: one row per child will do.)
    before = run.joined(0, "health").drop_duplicates("person_id").set_index("person_id")
    after = run.joined(1, "health").drop_duplicates("person_id").set_index("person_id")
    resent = [p for p in moved if p in after.index and p in before.index]
    assert resent and (after.loc[resent, "postcode"] != before.loc[resent, "postcode"]).all()
    assert (after.loc[resent, "postcode"] == after.loc[resent, "true_postcode"]).all()
    # Leavers: end date set to that night.
    for sector in SECTORS:
        df = run.joined(1, sector)
        end = as_dates(df["involvement_end"], load_contract(run.contract(sector)).date_format)
        assert (end == night).any(), sector
    # Corrections: a name typo at night 0 gone in the re-sent row.
    fixed = 0
    for sector in SECTORS:
        b = run.joined(0, sector).set_index("local_id")
        a = run.joined(1, sector).set_index("local_id")
        common = a.index.intersection(b.index)
        given = b.loc[common, "given_name"] != a.loc[common, "given_name"]
        family = b.loc[common, "family_name"] != a.loc[common, "family_name"]
        now = a.loc[common]
        g = now[given]  # corrected to the true name (or its nickname, also noise)
        ok = (g["given_name"] == g["true_given_name"]) | (g["given_name"] == g["true_nickname"])
        assert ok.all()
        f = now[family]  # corrected to the true surname (or a family change, also noise)
        assert (f["family_name"].str.split("-").str[0].isin(T.SURNAMES)).all()
        fixed += int((given | family).sum())
    assert fixed >= 1


def test_deterministic_and_seed_sensitive(tmp_path, test_registry):
    for night in (0, 1):
        for name in ("a", "b"):
            generate_night(
                tmp_path / name / "drop",
                tmp_path / name / "truth",
                registry=test_registry,
                children=3_000,
                seed=7,
                night_number=night,
            )
        generate_night(
            tmp_path / "c" / "drop",
            tmp_path / "c" / "truth",
            registry=test_registry,
            children=3_000,
            seed=8,
            night_number=night,
        )
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if a[k])  # every non-empty file differs


def test_chunking_does_not_change_output(tmp_path, monkeypatch, test_registry):
    generate_night(tmp_path / "a" / "drop", tmp_path / "a" / "truth", registry=test_registry, children=3_000)
    monkeypatch.setattr(E, "CHUNK_ROWS", 997)
    generate_night(tmp_path / "b" / "drop", tmp_path / "b" / "truth", registry=test_registry, children=3_000)
    a, b = _files(tmp_path / "a" / "drop"), _files(tmp_path / "b" / "drop")
    assert a == b
    ta = pd.read_parquet(tmp_path / "a" / "truth")
    tb = pd.read_parquet(tmp_path / "b" / "truth")
    pd.testing.assert_frame_equal(ta, tb)


def test_rerun_overwrites_cleanly(tmp_path, test_registry):
    drop, truth = tmp_path / "drop", tmp_path / "truth"
    first = generate_night(drop, truth, registry=test_registry, children=1_000)
    snapshot = _files(tmp_path)
    again = generate_night(drop, truth, registry=test_registry, children=1_000)
    assert again == first and _files(tmp_path) == snapshot
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("children", [10_000])
def test_ten_thousand_children_is_fast(tmp_path, children, test_registry):
    start = time.perf_counter()
    generate_night(tmp_path / "drop", tmp_path / "truth", registry=test_registry, children=children, night_number=2)
    assert time.perf_counter() - start < 8
