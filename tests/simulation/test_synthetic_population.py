"""Population shape and noise rates (20k children, night 0), and the noise primitives."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from childindex.contracts import load_contract
from childindex.simulation.synthetic import NoiseConfig, generate_night, true_identity_frame
from childindex.simulation.synthetic import names as T
from childindex.simulation.synthetic import population as P
from childindex.simulation.synthetic.noise import swap_day_month, swappable, typo_strings
from childindex.validation.identifiers import valid_nhs_numbers
from childindex.whitelist import SECTORS
from tests.simulation.synthetic_helpers import CHILDREN, as_dates


def test_sector_coverage(run):
    truth = run.truth(0)
    pop = run.populations[0]
    truth["sector"] = truth["organisation"].map({o.code: o.sector for o in run.registry.organisations})
    children = truth.drop_duplicates(["sector", "person_id"])  # a duplicate registration is the same child
    counts = children.groupby("sector").size()
    assert abs(counts["health"] / CHILDREN - 0.97) < 0.01
    assert abs(counts["education"] / pop.school_age.sum() - 0.96) < 0.01
    assert abs(counts["social_care"] / CHILDREN - 0.04) < 0.006
    per_child = children.groupby("person_id").size()
    assert len(per_child) == CHILDREN  # every child is known to at least one sector
    assert per_child.between(1, 3).all()
    edu = children.loc[children.sector == "education", "person_id"].to_numpy()
    assert pop.school_age[edu].all()


@pytest.mark.parametrize(("sector", "tolerance"), [("health", 0.0015), ("education", 0.001)])
def test_duplicate_registration_rate(run, sector, tolerance):
    """A few children are registered twice by their organisation: another local id, the same child."""
    truth = run.truth(0)
    per_child = truth[truth.organisation == run.code(sector)].groupby("person_id")["local_id"].nunique()
    assert per_child.max() == 2
    assert abs((per_child == 2).mean() - NoiseConfig().duplicate(sector)) < tolerance


def test_population_shape(run):
    true = true_identity_frame(run.populations[0], np.arange(CHILDREN))
    sex = true["sex"].value_counts(normalize=True)
    assert 0.0005 < sex["U"] < 0.006 and abs(sex["M"] - sex["F"]) < 0.03
    night = pd.Timestamp(run.nights[0].night)
    age = (night - true["date_of_birth"]).dt.days / 365.25
    assert age.between(0, 18).all()
    assert (age.groupby(age.astype(int)).size() / CHILDREN).between(0.045, 0.067).all()
    assert true["nhs_number"].notna().all() and true["nhs_number"].is_unique
    assert valid_nhs_numbers(true["nhs_number"]).all()
    school = run.populations[0].school_age[:CHILDREN]
    assert true.loc[school, "upn"].notna().all() and true.loc[~school, "upn"].isna().all()
    assert true["postcode"].str.match(r"^[A-Z]{1,2}\d{1,2} \d[A-Z]{2}$").all()


def test_twins(run):
    true = true_identity_frame(run.populations[0], np.arange(CHILDREN))
    twins = true[true["twin"]]
    assert abs(len(twins) / CHILDREN - 0.015) < 0.004
    pairs = twins.groupby("household")
    assert (pairs.size() == 2).all()
    for col in ("family_name", "date_of_birth", "postcode", "address"):
        assert (pairs[col].nunique() == 1).all(), col
    for col in ("given_name", "nhs_number"):
        assert (pairs[col].nunique() == 2).all(), col
    upns = twins.dropna(subset=["upn"]).groupby("household")["upn"]
    assert (upns.nunique() == upns.size()).all()
    truth = run.truth(0)
    assert set(truth.loc[truth.twin, "person_id"]) <= set(twins["person_id"])
    # In the files, most twin pairs still share surname, date of birth and postcode.
    health = run.joined(0, "health")
    pairs = health[health["true_twin"]].groupby("true_household")
    pairs = pairs.filter(lambda g: len(g) == 2).groupby("true_household")
    same = (
        (pairs["family_name"].nunique() == 1)
        & (pairs["date_of_birth"].nunique() == 1)
        & (pairs["postcode"].nunique() == 1)
    )
    assert same.mean() > 0.85
    assert (pairs["given_name"].nunique() == 2).mean() > 0.98


def _rates(df: pd.DataFrame) -> dict[str, float]:
    given, family = df["given_name"], df["family_name"]
    nick = given == df["true_nickname"]
    given_typo = (given != df["true_given_name"]) & ~nick
    hyphen = pd.Series(
        [f.startswith(t + "-") for f, t in zip(family, df["true_family_name"], strict=True)], index=df.index
    )
    changed = (family != df["true_family_name"]) & (family.isin(T.SURNAMES) | hyphen)
    family_typo = (family != df["true_family_name"]) & ~changed
    return {"nickname": nick.mean(), "typo": (given_typo | family_typo).mean(), "surname_change": changed.mean()}


@pytest.mark.parametrize("sector", ["health", "education"])
def test_name_noise_rates(run, sector):
    rates = _rates(run.joined(0, sector))
    noise = NoiseConfig()
    assert abs(rates["nickname"] - noise.nickname) < 0.008
    assert abs(rates["typo"] - noise.typo) < 0.006
    assert abs(rates["surname_change"] - noise.surname_change) < 0.006


@pytest.mark.parametrize("sector", ["health", "education"])
def test_dob_swap_rate(run, sector):
    df = run.joined(0, sector)
    dob = as_dates(df["date_of_birth"], load_contract(run.contract(sector)).date_format)
    true = df["true_date_of_birth"]
    eligible = swappable(true.to_numpy().astype("datetime64[D]").astype(np.int64))
    differs = (dob != true).to_numpy()
    assert not differs[~eligible].any()
    assert 0.0015 < differs[eligible].mean() < 0.0095


def test_missing_identifier_rates(run):
    noise = NoiseConfig()
    health = run.joined(0, "health")
    assert abs((health["nhs_number"] == "").mean() - noise.missing_nhs_health) < 0.006
    edu = run.joined(0, "education")
    assert abs((edu["upn"] == "").mean() - noise.missing_upn_education) < 0.005
    sc = run.joined(0, "social_care")
    assert abs((sc["nhs_number"] == "").mean() - noise.missing_nhs_social_care) < 0.06
    school = sc["true_upn"].notna()
    assert (sc.loc[~school, "upn"] == "").all()
    assert abs((sc.loc[school, "upn"] == "").mean() - noise.missing_upn_social_care) < 0.08


def test_house_move_rate(run):
    postcodes = {s: run.joined(0, s).drop_duplicates("person_id").set_index("person_id")["postcode"] for s in SECTORS}
    table = pd.DataFrame(postcodes)
    multi = table.notna().sum(axis=1) >= 2
    differs = table[multi].nunique(axis=1) > 1
    assert abs(differs.mean() - NoiseConfig().house_move) < 0.008


def test_no_noise_means_truth(tmp_path, test_registry):
    result = generate_night(
        tmp_path / "drop", tmp_path / "truth", registry=test_registry, children=2_000, noise=NoiseConfig.none()
    )
    truth = pd.read_parquet(result.truth_path)
    assert not truth["twin"].any()
    from tests.helpers import ORG
    from tests.simulation.synthetic_helpers import read_extract

    health = read_extract(result.files[ORG["health"]], "health_chis")
    ids = truth[truth.organisation == ORG["health"]].set_index("local_id").loc[health["LocalPatientID"]]
    from childindex.simulation.synthetic import build_population
    from childindex.simulation.synthetic.areas import World

    pop = build_population(
        2_000, seed=42, first_night=result.night, noise=NoiseConfig.none(), world=World(test_registry)
    )
    true = true_identity_frame(pop, ids["person_id"].to_numpy())
    assert (health["Forename"].to_numpy() == true["given_name"].to_numpy()).all()
    assert (health["Surname"].to_numpy() == true["family_name"].to_numpy()).all()
    assert (health["Postcode"].to_numpy() == true["postcode"].to_numpy()).all()
    assert (health["NHSNumber"].to_numpy() == true["nhs_number"].to_numpy()).all()


def test_nhs_capacity(monkeypatch, tmp_path, caplog, test_registry):
    pool = P._nhs_pool(42)
    assert len(pool) == 909_091 and len(np.unique(pool)) == len(pool)
    assert valid_nhs_numbers(pool.astype(str)).all()
    assert (pool // 10**7 == 999).all()
    monkeypatch.setattr(P, "_nhs_pool", lambda seed: pool[:150])
    with caplog.at_level(logging.WARNING):
        result = generate_night(tmp_path / "d", tmp_path / "t", registry=test_registry, children=200)
    assert any("get no NHS number" in r.getMessage() for r in caplog.records)
    truth = pd.read_parquet(result.truth_path)
    from tests.helpers import ORG
    from tests.simulation.synthetic_helpers import read_extract

    health = truth[truth.organisation == ORG["health"]]
    df = read_extract(result.files[ORG["health"]], "health_chis").set_index("LocalPatientID")
    beyond = health.loc[health.person_id >= 150, "local_id"]
    assert len(beyond) > 0 and (df.loc[beyond, "NHSNumber"] == "").all()


def test_names_are_encodable_and_nicknames_cover_pairs():
    for name in T.GIVEN_NAMES + T.SURNAMES:
        name.encode("cp1252")
        name.encode("latin-1")
    assert {"Zoë", "Chloé", "Siân", "Renée"} <= set(T.FEMALE_NAMES)
    assert "Noël" in T.MALE_NAMES
    assert len(T.NICKNAMES_MALE) + len(T.NICKNAMES_FEMALE) >= 40
    index = {n: i for i, n in enumerate(T.GIVEN_NAMES)}
    william, bill = index["William"], index["Bill"]
    assert T.NICKNAME_BY_SEX[0][william] == bill and T.NICKNAME_BY_SEX[0][bill] == william
    assert T.NICKNAME_BY_SEX[1][index["Sam"]] == index["Samantha"]
    assert T.NICKNAME_BY_SEX[0][index["Sam"]] == index["Samuel"]


def test_typo_strings_edits_one_character():
    names = np.array(["Thomas", "Ann", "Zoë", "Jo", "A"] * 200)
    rng = np.random.default_rng(0)
    out = typo_strings(names, rng.random(len(names)), rng.random(len(names)), rng.random(len(names)))
    for before, after in zip(names, out, strict=True):
        if len(before) < 2:
            assert after == before
            continue
        assert after != before and after[0] == before[0]
        assert len(before) - 1 <= len(after) <= len(before)
        if len(after) == len(before):
            diffs = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            assert len(diffs) == 1 or (len(diffs) == 2 and diffs[1] == diffs[0] + 1 and sorted(before) == sorted(after))
        else:
            assert any(before[:i] + before[i + 1 :] == after for i in range(len(before)))
        after.encode("cp1252")


def test_swap_day_month():
    days = np.array(["2015-03-07", "2015-03-03", "2015-03-13", "2026-10-12"], dtype="datetime64[D]").astype(np.int64)
    latest = np.datetime64("2026-11-23").astype(np.int64)
    out, applied = swap_day_month(days, np.ones(4, dtype=bool), latest=latest)
    assert applied.tolist() == [True, False, False, False]  # 12 Oct -> 10 Dec is in future
    assert out.astype("datetime64[D]")[0] == np.datetime64("2015-07-03")
    assert (out[1:] == days[1:]).all()
