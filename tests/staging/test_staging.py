"""The staging layout: who sent a row (organisation, sector) and the area its involvement is in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from childindex.intake import run_intake
from childindex.staging.layout import STAGING_COLUMNS
from childindex.staging.pseudonymise import hmac_hex, local_id_domain, pseudonym_sql
from childindex.whitelist import SENSITIVE_SERVICE
from tests.helpers import ORG, child, drop, render
from tests.registries import AREA, org, use_registry

NIGHT = date(2026, 11, 24)
DURHAM = "E06000047"  # districts DH1, LS6
DARLINGTON = "E06000005"  # districts DL1, DL3
SUNDERLAND = "E08000024"  # district SR1
NORTHUMBERLAND = "E06000057"  # no districts listed
AREAS = [
    AREA,
    {"code": DARLINGTON, "name": "Darlington", "la_number": 841, "postcode_districts": ["DL1", "DL3"]},
    {"code": SUNDERLAND, "name": "Sunderland", "la_number": 394, "postcode_districts": ["SR1"]},
    {"code": NORTHUMBERLAND, "name": "Northumberland", "la_number": 929},
]


def _staged(result: dict, columns: str = "source_row, organisation, sector, area") -> list[tuple]:
    """The file's own columns (not values DuckDB would infer from its organisation=/night= folders)."""
    return duckdb.sql(
        f"SELECT {columns} FROM read_parquet('{result['staged_path']}', hive_partitioning = false) ORDER BY source_row"
    ).fetchall()


def test_staged_at_its_organisation_s_place_with_its_sector_and_area(settings) -> None:
    drop(settings, "education", render("education", [child(i, "education") for i in (1, 2)]))
    [result] = run_intake(settings, ORG["education"], NIGHT)
    path = Path(result["staged_path"])
    assert path.parent == settings.staging_dir / "organisation=840" / f"night={NIGHT.isoformat()}"
    assert path.name == result["sha256"][:16] + ".parquet"
    staged = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    assert tuple(staged.columns) == STAGING_COLUMNS
    assert _staged(result) == [(1, "840", "education", DURHAM), (2, "840", "education", DURHAM)]


def test_area_of_a_single_area_organisation_is_its_area(settings, monkeypatch, tmp_path) -> None:
    """Whatever the postcode (another area's district, none known, withheld): its own area,
    also when its area lists no postcode districts."""
    settings = use_registry(
        monkeypatch,
        tmp_path / "registry",
        [org("RH2", "health", "health_chis", (NORTHUMBERLAND,)), org("RH3", "health", "health_chis", (DURHAM,))],
        AREAS,
    )
    rows = [
        child(1, postcode="DH1 3AB"),  # Durham's district
        child(2, postcode="SR1 1AA"),  # Sunderland's
        child(3, postcode="ZE1 9QX"),  # in no area's list
        child(4, postcode="DL1 3AB", sensitive="Y"),
    ]
    for code, area in (("RH2", NORTHUMBERLAND), ("RH3", DURHAM)):
        drop(settings, code, render("health_chis", rows))
        [result] = run_intake(settings, code, NIGHT)
        assert result["outcome"] == "accepted"
        assert _staged(result) == [(i, code, "health", area) for i in (1, 2, 3, 4)]


def test_area_of_a_multi_area_organisation_follows_the_postcode_district(settings, monkeypatch, tmp_path) -> None:
    """The area whose districts hold the record's outward code, among the areas the
    organisation serves; its first area otherwise, and always for a sensitive row."""
    settings = use_registry(
        monkeypatch, tmp_path / "registry", [org("RH1", "health", "health_chis", (DARLINGTON, DURHAM))], AREAS
    )
    rows = [
        child(1, postcode="DH1 3AB"),  # Durham: its second area
        child(2, postcode="dl13ab"),  # Darlington, once normalised to DL1 3AB
        child(3, postcode="SR1 1AA"),  # Sunderland's district, an area it does not serve: first area
        child(4, postcode="ZE1 9QX"),  # a district no area lists: first area
        child(5, postcode="LS6 2AB", sensitive="Y"),  # Durham's district, but sensitive: first area
        child(6, postcode="LS6 2AB", sensitive="N"),  # the same, not sensitive: Durham
        child(7, postcode="DL3 0AA"),  # Darlington
    ]
    drop(settings, "RH1", render("health_chis", rows))
    [result] = run_intake(settings, "RH1", NIGHT)
    assert result["outcome"] == "accepted"
    want = [DURHAM, DARLINGTON, DARLINGTON, DARLINGTON, DARLINGTON, DURHAM, DARLINGTON]
    assert _staged(result) == [(i, "RH1", "health", a) for i, a in enumerate(want, start=1)]
    assert _staged(result, "source_row, postcode, service")[4] == (5, None, SENSITIVE_SERVICE)


def test_linkage_reads_a_numeric_organisation_code_as_the_code(settings) -> None:
    """An LA number (840) is a code, not a number: the folder name organisation=840 must not
    turn the staged column into an integer when linkage reads the files back."""
    from childindex.linkage.batch import connect, load_batch

    paths = []
    for sector in ("education", "social_care"):
        drop(settings, sector, render(sector, [child(1, sector)]))
        [result] = run_intake(settings, ORG[sector], NIGHT)
        paths.append(result["staged_path"])
    con = connect(settings)
    try:
        for batch, codes in (([paths[0]], {"840"}), (paths, {"840", "E06000047"})):
            con.execute("DROP TABLE IF EXISTS batch")
            load_batch(con, batch)
            got = con.execute("SELECT DISTINCT organisation, typeof(organisation), typeof(night) FROM batch").fetchall()
            assert set(got) == {(code, "VARCHAR", "DATE") for code in codes}
    finally:
        con.close()


@pytest.mark.parametrize("pads", ["", "_new"])
def test_local_id_pseudonyms_are_per_organisation(pads: str) -> None:
    """Two organisations' record 123 are different children: their source keys differ; the
    NHS number, UPN and name-and-birth keys of the same values do not."""
    key = b"k" * 32
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE std AS SELECT 'H0000123' AS std_local_id, '9990000018' AS std_nhs_number, "
        "'A938200026001' AS std_upn, 'Ada' AS std_given_name, 'Lovelace' AS std_family_name, "
        "DATE '2015-01-01' AS std_date_of_birth"
    )
    got = {}
    for code in ("RH1", "RH2", "E06000047"):
        exprs, params = pseudonym_sql(key, code, pads)
        assert params["d_local"] == local_id_domain(code) == f"local_id:{code}"
        got[code] = con.execute(f"SELECT {', '.join(exprs.values())} FROM std", params).fetchall()[0]
    assert len({g[0] for g in got.values()}) == 3
    assert got["RH1"][0] == hmac_hex(key, "local_id:RH1", "H0000123")
    assert got["RH1"][1:] == got["RH2"][1:] == got["E06000047"][1:]
    assert got["RH1"][1] == hmac_hex(key, "nhs_number", "9990000018")
