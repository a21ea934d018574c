"""Synthetic England: the areas file, postcode districts, NHS providers, the registry builder and the
movement model (rates, weights, determinism, scale)."""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter

import numpy as np
import pytest
import yaml

from childindex.organisations.registry import GSS_UPPER_TIER, LA_NUMBER, ODS_CODE, OUTWARD_CODE, parse_registry
from childindex.simulation.england import (
    CROSS,
    CROSS_PER_YEAR,
    MOVES_PER_YEAR,
    REGIONS,
    WITHIN,
    area_after_moves,
    child_weights,
    england,
    england_registry,
    home_areas,
    move_schedule,
    neighbours,
    nhs_providers,
    postcode_in_area,
    select_areas,
    write_registry,
)
from childindex.simulation.england.world import NEIGHBOUR_SHARE

NORTH_EAST = {
    "E06000047": ("County Durham", 840),
    "E06000005": ("Darlington", 841),
    "E08000037": ("Gateshead", 390),
    "E06000001": ("Hartlepool", 805),
    "E06000002": ("Middlesbrough", 806),
    "E08000021": ("Newcastle upon Tyne", 391),
    "E08000022": ("North Tyneside", 392),
    "E06000057": ("Northumberland", 929),
    "E06000003": ("Redcar and Cleveland", 807),
    "E08000023": ("South Tyneside", 393),
    "E06000004": ("Stockton-on-Tees", 808),
    "E08000024": ("Sunderland", 394),
}
SPOT_CHECKS = {  # code: (name, DfE LA number, region)
    "E10000016": ("Kent", 886, "South East"),
    "E08000025": ("Birmingham", 330, "West Midlands"),
    "E06000063": ("Cumberland", 942, "North West"),
    "E06000064": ("Westmorland and Furness", 943, "North West"),
    "E06000065": ("North Yorkshire", 815, "Yorkshire and The Humber"),
    "E06000066": ("Somerset", 933, "South West"),
    "E06000058": ("Bournemouth, Christchurch and Poole", 839, "South West"),
    "E06000060": ("Buckinghamshire", 825, "South East"),
    "E06000061": ("North Northamptonshire", 940, "East Midlands"),
    "E06000062": ("West Northamptonshire", 941, "East Midlands"),
    "E09000001": ("City of London", 201, "London"),
    "E06000053": ("Isles of Scilly", 420, "South West"),
}
SEED = 20260101
YEAR = 365


@pytest.fixture(scope="module")
def registries():
    return {
        region: parse_registry(yaml.safe_dump(england_registry(region=region)), f"england {region}")
        for region in (None, "North East")
    }


@pytest.fixture(scope="module")
def million():
    households = np.arange(1_000_000, dtype=np.int64)
    schedule = move_schedule(SEED, households, YEAR)
    home = home_areas(SEED, households, child_weights())
    after = area_after_moves(SEED, households, YEAR, home=home)
    return households, schedule, home, after


# -- areas ---------------------------------------------------------------------------------------


def test_areas_are_englands_upper_tier_authorities():
    areas = england()
    assert len(areas) == 153
    assert all(GSS_UPPER_TIER.match(a.code) for a in areas)
    assert all(LA_NUMBER.match(f"{a.la_number:03d}") and 201 <= a.la_number <= 943 for a in areas)
    for field in ("code", "name", "la_number"):
        assert len({getattr(a, field) for a in areas}) == 153, field
    assert tuple(dict.fromkeys(a.region for a in areas)) == REGIONS  # grouped by region, in REGIONS order
    assert Counter(a.region for a in areas) == {
        "North East": 12,
        "North West": 24,
        "Yorkshire and The Humber": 15,
        "East Midlands": 10,
        "West Midlands": 14,
        "East of England": 11,
        "London": 33,
        "South East": 19,
        "South West": 15,
    }
    # Gone since the 2019-2023 reorganisations.
    assert not {"E10000006", "E10000023", "E10000027", "E10000021", "E10000002"} & {a.code for a in areas}
    by_code = {a.code: a for a in areas}
    assert {c: (by_code[c].name, by_code[c].la_number) for c in NORTH_EAST} == NORTH_EAST
    assert all(by_code[c].region == "North East" for c in NORTH_EAST)
    assert {c: (by_code[c].name, by_code[c].la_number, by_code[c].region) for c in SPOT_CHECKS} == SPOT_CHECKS
    assert all(a.code.startswith("E09") == (a.region == "London") for a in areas)


def test_child_population_is_about_twelve_million():
    total = sum(a.children for a in england())
    assert 11_500_000 <= total <= 12_500_000
    assert all(a.children > 0 for a in england())
    w = child_weights()
    assert w.shape == (153,) and abs(w.sum() - 1) < 1e-12
    by_name = {a.name: a.children for a in england()}
    assert by_name["Kent"] > by_name["Birmingham"] > by_name["Leeds"] > by_name["Rutland"] > by_name["City of London"]


def test_postcode_districts_are_unique_well_formed_and_proportional():
    areas = england()
    districts = [d for a in areas for d in a.districts]
    assert len(districts) == len(set(districts))
    assert all(OUTWARD_CODE.match(d) for d in districts)
    assert all(len(a.districts) == max(3, round(a.children / 5000)) for a in areas)
    assert 2_000 <= len(districts) <= 3_000
    ne_prefixes = {d.rstrip("0123456789") for a in areas if a.region == "North East" for d in a.districts}
    assert ne_prefixes <= {"NE", "TD", "SR", "DH", "DL", "TS"}
    assert all(d.startswith(tuple(a.postcode_areas)) for a in areas for d in a.districts)


def test_neighbours_are_adjacent_rows_in_the_same_region():
    areas = england()
    near = neighbours()
    for i, a in enumerate(areas):
        valid = [j for j in near[i] if j >= 0]
        assert 1 <= len(valid) <= 2 and all(abs(j - i) == 1 and areas[j].region == a.region for j in valid)
    ne = select_areas("North East")
    assert neighbours(ne).max() == 11 and (neighbours(ne)[[0, 11], 1] == -1).all()


def test_nhs_providers_cover_every_area_within_a_region():
    areas = {a.code: a for a in england()}
    providers = nhs_providers()
    assert 140 <= len(providers) <= 200
    assert len({p.code for p in providers}) == len(providers)
    assert all(ODS_CODE.match(p.code) and len(p.code) == 3 and p.code.startswith("Z") for p in providers)
    assert all(p.name.endswith("(synthetic)") and len(p.name) <= 200 for p in providers)
    assert all(1 <= len(p.areas) <= 4 and len({areas[c].region for c in p.areas}) == 1 for p in providers)
    contracts = Counter(p.contract for p in providers)
    assert set(contracts) == {"health_chis", "health_epr"}
    assert abs(contracts["health_chis"] - contracts["health_epr"]) <= 1
    assert {c for p in providers for c in p.areas} == set(areas)
    for code, area in areas.items():  # a split area's providers share out its districts exactly
        parts = [p for p in providers if p.part is not None and p.areas == (code,)]
        if parts:
            assert sorted(d for p in parts for d in p.districts) == sorted(area.districts)
            assert area.children >= 120_000 and len(parts) == area.children // 60_000
    assert nhs_providers() == providers  # deterministic (and cached)


# -- registry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", [None, "North East"])
def test_registry_parses_and_each_area_has_its_three_services(registries, region):
    registry = registries[region]
    orgs = registry.organisations
    if region is None:
        assert len(registry.areas) == 153 and 450 <= len(orgs) <= 500
    else:
        assert {a.code for a in registry.areas} == set(NORTH_EAST)
        assert len(registry.areas) == 12 and len(orgs) >= 20
    districts = [d for a in registry.areas for d in a.postcode_districts]
    assert len(districts) == len(set(districts)) and all(a.postcode_districts for a in registry.areas)
    for area in registry.areas:
        serving = [o for o in orgs if area.code in o.areas]
        sectors = Counter(o.sector for o in serving)
        assert sectors["education"] == 1 and sectors["social_care"] == 1 and sectors["health"] >= 1, area.code
        (education,) = [o for o in serving if o.sector == "education"]
        (social_care,) = [o for o in serving if o.sector == "social_care"]
        assert education.code == f"{area.la_number:03d}" and education.contract == "education_mis"
        assert education.name == f"{area.name} education"
        assert social_care.code == area.code and social_care.name == f"{area.name} children's social care"
    care = Counter(o.contract for o in registry.in_sector("social_care"))
    assert set(care) == {"social_care_cms", "social_care_ehm"}
    assert abs(care["social_care_cms"] - care["social_care_ehm"]) <= 1
    assert all(o.name.endswith("(synthetic)") for o in registry.in_sector("health"))


def test_a_regions_registry_is_a_subset_of_englands(registries):
    england_orgs = {o.code: o for o in registries[None].organisations}
    for org in registries["North East"].organisations:
        full = england_orgs[org.code]
        assert (org.name, org.sector, org.contract) == (full.name, full.sector, full.contract)
        assert set(org.areas) <= set(full.areas)


def test_registry_of_the_first_areas_and_bad_arguments():
    small = england_registry(region="London", areas=3)
    assert [a["name"] for a in small["areas"]] == ["City of London", "Westminster", "Kensington and Chelsea"]
    codes = {a["code"] for a in small["areas"]}
    assert all(set(o["areas"]) <= codes for o in small["organisations"])
    parse_registry(yaml.safe_dump(small), "small")
    with pytest.raises(ValueError, match="unknown region 'Scotland'; known: North East"):
        england_registry(region="Scotland")
    with pytest.raises(ValueError, match="at least 1"):
        england_registry(areas=0)


def test_write_registry_says_it_is_generated_and_synthetic(tmp_path):
    path = write_registry(tmp_path / "config" / "organisations.yaml", region="North East")
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# GENERATED by childindex.simulation.england.write_registry")
    assert any("SYNTHETIC" in line for line in header)
    registry = parse_registry(text, str(path))
    assert len(registry.areas) == 12 and yaml.safe_load(text) == england_registry(region="North East")


# -- movement model ------------------------------------------------------------------------------


def test_home_areas_follow_the_child_population_weights(million):
    _households, _schedule, home, _after = million
    w = child_weights()
    observed = np.bincount(home, minlength=w.size)
    expected = w * home.size
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = w.size - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof), chi2  # ~ 152 +- 17 for a fair draw
    assert home.dtype == np.int16 and home.min() >= 0 and home.max() < w.size


def test_annual_move_rates_match_the_stated_figures(million):
    households, schedule, home, after = million
    n = households.size
    assert abs(schedule.household.size / n - MOVES_PER_YEAR) < 0.003  # 0.10 moves per child-year
    cross = schedule.kind == CROSS
    assert abs(cross.sum() / n - CROSS_PER_YEAR) < 0.002  # 0.04 cross-authority moves per child-year
    assert set(np.unique(schedule.kind)) == {WITHIN, CROSS}
    assert schedule.night.min() >= 1 and schedule.night.max() <= YEAR and (np.diff(schedule.night) >= 0).all()
    # Children living in another authority a year on: 1 - exp(-0.04), less the few who moved back.
    changed = after != home
    assert 0.035 < changed.mean() < 1 - np.exp(-CROSS_PER_YEAR) + 0.002
    crossed = np.zeros(n, dtype=bool)
    crossed[schedule.household[cross]] = True
    assert not (changed & ~crossed).any()  # only a cross-authority move changes the area
    assert (crossed & ~changed).mean() < 0.002  # and nearly every one does (a return undoes one)


def test_cross_moves_go_mostly_to_a_neighbour_in_the_region(million):
    _households, schedule, home, after = million
    once = np.bincount(schedule.household, minlength=home.size) == 1
    single_cross = np.zeros(home.size, dtype=bool)
    single_cross[schedule.household[schedule.kind == CROSS]] = True
    movers = np.flatnonzero(single_cross & once)
    assert movers.size > 30_000
    near = neighbours()
    to_neighbour = (near[home[movers]] == after[movers][:, None]).any(axis=1)
    # 70% to a neighbour, plus the weighted draws (30%) that happen to land on one.
    assert NEIGHBOUR_SHARE - 0.01 < to_neighbour.mean() < NEIGHBOUR_SHARE + 0.1
    regions = np.array([a.region for a in england()])
    assert (regions[home[movers]] == regions[after[movers]]).mean() > NEIGHBOUR_SHARE


def test_a_move_is_in_effect_from_its_night():
    households = np.arange(20_000, dtype=np.int64)
    schedule = move_schedule(SEED, households, YEAR)
    first = schedule.number == 0
    pick = np.flatnonzero(first & (schedule.kind == CROSS) & (schedule.night > 1))[:50]
    hh, night = schedule.household[pick], schedule.night[pick]
    home = home_areas(SEED, hh, child_weights())
    for h, m, a0 in zip(hh, night, home, strict=True):
        before = area_after_moves(SEED, np.array([h]), int(m) - 1)[0]
        during = area_after_moves(SEED, np.array([h]), int(m))[0]
        assert before == a0 and during != a0
    nothing = move_schedule(SEED, households, 0)
    assert nothing.household.size == 0
    assert (area_after_moves(SEED, households, 0) == home_areas(SEED, households, child_weights())).all()


def test_same_seed_same_world_and_chunks_agree(million):
    households, schedule, home, after = million
    part = households[123_456:133_456]
    again = move_schedule(SEED, part, YEAR)
    mask = (schedule.household >= part[0]) & (schedule.household <= part[-1])
    assert (again.household == schedule.household[mask]).all() and (again.night == schedule.night[mask]).all()
    assert (again.kind == schedule.kind[mask]).all()
    assert (area_after_moves(SEED, part, YEAR) == after[123_456:133_456]).all()
    assert (home_areas(SEED, part, child_weights()) == home[123_456:133_456]).all()
    assert (home_areas(SEED + 1, part, child_weights()) != home[123_456:133_456]).mean() > 0.9
    other = move_schedule(SEED + 1, part, YEAR)
    assert not np.array_equal(other.household, again.household)


def test_postcode_in_area_picks_a_district_of_that_area():
    areas = england()
    keys = np.arange(200_000, dtype=np.int64)
    area_index = home_areas(SEED, keys, child_weights())
    districts = postcode_in_area(SEED, keys, area_index)
    owner = {d: a.index for a in areas for d in a.districts}
    assert all(owner[d] == i for d, i in zip(districts[:20_000], area_index[:20_000], strict=True))
    durham = next(a for a in areas if a.name == "County Durham")
    in_durham = districts[area_index == durham.index]
    assert set(in_durham) == set(durham.districts)  # every district is reachable
    assert (postcode_in_area(SEED, keys, area_index) == districts).all()
    ne = select_areas("North East")
    local = postcode_in_area(SEED, keys[:1000], np.zeros(1000, dtype=np.int64), areas=ne)
    assert set(local) <= set(ne[0].districts)


def test_a_one_region_world_keeps_its_households_in_the_region():
    ne = select_areas("North East")
    households = np.arange(100_000, dtype=np.int64)
    after = area_after_moves(SEED, households, 5 * YEAR, areas=ne)
    assert after.min() >= 0 and after.max() < len(ne)
    home = home_areas(SEED, households, child_weights(ne))
    assert 0.12 < (after != home).mean() < 0.2  # five years at 0.04 a year, some moving back


def test_eleven_million_households_in_seconds_and_bounded_memory():
    households = np.arange(11_000_000, dtype=np.int64)
    w = child_weights()
    tracemalloc.start()
    started = time.perf_counter()
    home = home_areas(SEED, households, w)
    drawn = time.perf_counter()
    after = area_after_moves(SEED, households, YEAR, home=home)
    done = time.perf_counter()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\n11M households: home areas {drawn - started:.2f} s, a year of moves {done - drawn:.2f} s, "
        f"peak traced memory {peak / 2**20:.0f} MiB (the household ids alone are {households.nbytes / 2**20:.0f} MiB)"
    )
    assert home.shape == after.shape == (11_000_000,) and home.dtype == after.dtype == np.int16
    share = np.bincount(home, minlength=w.size) / home.size
    assert np.abs(share - w).max() < 0.001
    assert 0.035 < (after != home).mean() < 0.041
