"""Extract files follow their contracts; truth covers them and stays out of the drop zone."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest

from childindex.contracts import contract_names, load_contract
from childindex.simulation.synthetic import column_layout
from childindex.simulation.synthetic.records import EXTRAS
from childindex.validation.identifiers import valid_nhs_numbers, valid_upns
from tests.simulation.synthetic_helpers import as_dates

DRAMA_PHONE = re.compile(r"^(01(1[3-8]|21|31|41|51|61) 496 0\d{3}|020 7946 0\d{3})$")
MAILBOX = re.compile(r"^[a-z]+-[a-z]+-team\d+@example\.org$")


def test_every_layout_is_written(run, other_run):
    written = {r.contract(code) for r in (run, other_run) for code in r.nights[0].files}
    assert written == set(contract_names()) == set(EXTRAS)


@pytest.mark.parametrize("night", [0, 1])
def test_file_name_and_completion(layout, night):
    run, code = layout
    contract = load_contract(run.contract(code))
    result = run.nights[night]
    assert set(result.files) == {o.code for o in run.registry.organisations}
    path = result.files[code]
    assert path.parent == run.registry.drop_folder(code, run.drop) == run.drop / code
    match = contract.match_name(path.name)
    assert match is not None
    assert re.sub(r"\D", "", match.group("night")) == f"{result.night:%Y%m%d}"
    done = path.with_name(path.name + ".done")
    assert done.exists() == (contract.file.completion == "marker")
    if done.exists():
        assert done.stat().st_size == 0
    assert not list((run.drop / code).glob("*.part"))


def test_encoding_header_and_rows(layout):
    run, code = layout
    contract = load_contract(run.contract(code))
    raw = run.nights[0].files[code].read_bytes()
    text = raw.decode(contract.file.encoding)  # strict
    accented = {"Zoë", "Chloé", "Siân", "Renée", "Noël"}
    assert any(name in text for name in accented)
    if contract.file.encoding != "utf-8":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=contract.file.delimiter))
    header = rows[0]
    assert tuple(header) == column_layout(contract.name)
    contract_cols = [c for c in header if c in contract.column_names]
    assert contract_cols == list(contract.column_names)  # contract order kept
    assert {name for _, name, _ in EXTRAS[contract.name]} == set(header) - set(contract.column_names)
    assert all(len(r) == len(header) for r in rows[1:])
    assert len(rows) - 1 == run.nights[0].rows[code]


def test_quoting_only_when_needed(run):
    text = run.nights[0].files[run.code("health")].read_text("utf-8")
    lines = text.splitlines()[1:]
    quoted = [line for line in lines if '"' in line]
    assert quoted, "some address lines hold a comma and must be quoted"
    assert all('"Flat ' in line for line in quoted)
    assert len(quoted) < 0.1 * len(lines)
    df = run.extract(0, "health")
    flats = df["AddressLine1"].str.startswith("Flat ")
    assert flats.any() and df.loc[flats, "AddressLine1"].str.contains(", ").all()


LOCAL_IDS = {
    "health_chis": r"^H\d{8}$",
    "health_epr": r"^RX\d{9}$",
    "education_mis": r"^P\d{8}$",
    "social_care_cms": r"^\d+$",
    "social_care_ehm": r"^CR\d{8}$",
}


def test_values_follow_contract(layout):
    run, code = layout
    contract = load_contract(run.contract(code))
    df = run.extract(0, code)
    by_field = {c.field: c.name for c in contract.columns}
    for field in ("date_of_birth", "involvement_start", "involvement_end"):
        dates = as_dates(df[by_field[field]], contract.date_format)
        if field != "involvement_end":
            assert dates.notna().all()
    start = as_dates(df[by_field["involvement_start"]], contract.date_format)
    end = as_dates(df[by_field["involvement_end"]], contract.date_format)
    dob = as_dates(df[by_field["date_of_birth"]], contract.date_format)
    night = pd.Timestamp(run.nights[0].night)
    assert (end.isna().mean()) > 0.5  # mostly open
    assert (end.dropna() < night).all() and (start < night).all()
    assert (start[end.notna()] <= end[end.notna()]).all()
    age = (night - dob).dt.days / 365.25
    assert age.between(0, 19).all()  # a day/month swap can age a 17-year-old by months
    assert (age < 18).mean() > 0.999
    assert set(df[by_field["sex"]]) <= set(contract.sex_codes)
    assert set(df[by_field["service"]]) <= set(contract.services)
    for field in ("local_id", "given_name", "family_name", "postcode", "contact_route"):
        assert (df[by_field[field]] != "").all(), field
    assert df[by_field["local_id"]].is_unique
    routes = df[by_field["contact_route"]]
    assert (routes.str.match(DRAMA_PHONE) | routes.str.match(MAILBOX)).all()
    assert routes.nunique() <= 40
    postcode = r"^[A-Z]{1,2}\d{1,2} \d[ABDEFGHJLNPQRSTUWXYZ]{2}$"
    assert df[by_field["postcode"]].str.match(postcode).all()
    assert df[by_field["local_id"]].str.match(LOCAL_IDS[contract.name]).all()


def test_identifiers_valid_and_unique(layout):
    """Each identifier is valid, the child's own, and no other child's: it appears again only
    on the child's duplicate registration."""
    run, code = layout
    df = run.joined(0, code)
    if "nhs_number" in df:
        sent = df[df["nhs_number"] != ""]
        nhs = sent["nhs_number"]
        assert nhs.str.startswith("999").all()
        assert valid_nhs_numbers(nhs).all()
        assert sent.drop_duplicates("person_id")["nhs_number"].is_unique
        assert nhs.value_counts().max() <= 2 and (sent.groupby("nhs_number")["person_id"].nunique() == 1).all()
        assert (nhs == sent["true_nhs_number"]).all()
    if "upn" in df:
        sent = df[df["upn"] != ""]
        upn = sent["upn"]
        assert len(upn) > 0 and valid_upns(upn).all()
        assert sent.drop_duplicates("person_id")["upn"].is_unique
        assert upn.value_counts().max() <= 2 and (sent.groupby("upn")["person_id"].nunique() == 1).all()
        assert upn.str[1:4].astype(int).between(201, 938).all()
        assert (upn == sent["true_upn"]).all()


def test_identifiers_unique_across_population(run):
    true = run.joined(0, "health").drop_duplicates("person_id")
    assert true["true_nhs_number"].dropna().is_unique
    edu = run.joined(0, "education").drop_duplicates("person_id")
    assert edu["true_upn"].notna().all() and edu["true_upn"].is_unique


def test_truth_covers_every_row_and_stays_out_of_drop(run):
    for night, result in run.nights.items():
        assert not result.truth_path.resolve().is_relative_to(run.drop.resolve())
        assert result.truth_path.parent.name == f"night={result.night:%Y-%m-%d}"
        truth = run.truth(night)
        assert str(truth["person_id"].dtype) == "int64" and truth["twin"].dtype == bool
        assert len(truth) == sum(result.rows.values())
        assert set(truth["organisation"]) <= set(result.files)
        for code in result.files:
            contract = load_contract(run.contract(code))
            ids = run.extract(night, code)[contract.column_for("local_id").name]
            mine = truth[truth.organisation == code]
            assert sorted(ids) == sorted(mine["local_id"])
    assert not [p for p in run.drop.rglob("*") if p.suffix == ".parquet"]


def test_truth_inside_drop_root_is_refused(tmp_path, test_registry):
    from childindex.simulation.synthetic import generate_night

    with pytest.raises(ValueError):
        generate_night(tmp_path, tmp_path / "truth", registry=test_registry, children=10)


def test_extras_hold_synthetic_values(run, other_run):
    health = run.extract(0, "health")
    assert health["GPPracticeCode"].str.match(r"^[A-Z]\d{5}$").all()
    assert set(health["Ethnicity"]) <= set("ABCDEFGHJKLMNPRSZ")
    edu = run.extract(0, "education")
    assert set(edu["SENStatus"]) <= {"N", "K", "E"} and set(edu["FSMEligible"]) <= {"Y", "N"}
    sc = run.extract(0, "social_care")
    assert sc["ALLOCATED_WORKER"].str.match(r"^\S+ \S+").all()
    assert sc["REFERRAL_REASON"].str.match(r"^N\d ").all()
    assert (sc["ADDRESS"].str.contains(", ")).all()
    assert np.mean(health["AddressLine1"].str.match(r"^(Flat \d+, )?\d+ ")) == 1.0
    epr = other_run.extract(0, "health")
    assert epr["registered_gp"].str.match(r"^[A-Z]\d{5}$").all()
    assert set(epr["ethnic_category"]) <= set("ABCDEFGHJKLMNPRSZ")
    assert (epr["address"].str.contains(", ")).all()
    ehm = other_run.extract(0, "social_care")
    assert ehm["KeyWorker"].str.match(r"^\S+ \S+").all()
    assert ehm["PrimaryNeed"].str.match(r"^N\d ").all()
    assert np.mean(ehm["AddressLine1"].str.match(r"^(Flat \d+, )?\d+ ")) == 1.0
