from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from childindex.contracts import all_contracts, contract_names, load_contract, load_contract_file
from childindex.contracts.docs import render_all
from childindex.errors import ContractError
from childindex.whitelist import SOURCE_FIELDS
from tests.helpers import CONTRACT, child, file_name, render

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "plugins" / "childindex" / "contracts"
SHIPPED = ("education_mis", "health_chis", "health_epr", "social_care_cms", "social_care_ehm")
NIGHT = date(2026, 11, 24)


def test_every_contract_is_valid() -> None:
    contracts = all_contracts()
    assert contract_names() == SHIPPED
    assert sorted(contracts) == sorted(p.stem for p in CONTRACT_DIR.glob("*.yaml"))
    for name, c in contracts.items():
        assert c.name == name and c.version >= 1
        assert {col.field for col in c.columns} <= set(SOURCE_FIELDS)
        assert c.column_for("local_id").identifier
    # Every sector has a contract, and the tests' registry sends one of each sector's.
    assert {c.sector for c in contracts.values()} == set(CONTRACT)
    for sector, name in CONTRACT.items():
        assert contracts[name].sector == sector


def test_contracts_differ_as_real_systems_do() -> None:
    cs = [load_contract(name) for name in CONTRACT.values()]  # one per sector, as the tests send them
    assert len({c.file.encoding for c in cs}) == 3
    assert len({c.date_format for c in cs}) == 3
    assert len({c.file.delimiter for c in cs}) >= 2
    every = all_contracts().values()
    assert {c.file.delimiter for c in every} >= {",", "|", "\t"}
    assert {c.file.completion for c in every} == {"marker", "rename"}


def test_file_names() -> None:
    assert load_contract("health_chis").match_name("health_2026-11-24.csv").group("night") == "2026-11-24"
    assert load_contract("education_mis").match_name("EDU_PUPILS_20261124.csv")
    assert load_contract("social_care_cms").match_name("sc_extract_20261124.txt")
    assert load_contract("health_chis").match_name("health_2026-11-24.csv.part") is None
    assert load_contract("health_epr").match_name("CYP_CASELOAD_20261124.tsv").group("night") == "20261124"
    assert load_contract("health_epr").match_name("CYP_CASELOAD_20261124.tsv.part") is None
    ehm = load_contract("social_care_ehm")
    assert ehm.match_name("childrens_services_2026-11-24.csv").group("night") == "2026-11-24"
    assert ehm.match_name("health_2026-11-24.csv") is None
    for name in SHIPPED:  # the tests' file names fit their contracts
        assert load_contract(name).match_name(file_name(name, NIGHT)), name


def test_unknown_contract() -> None:
    with pytest.raises(ContractError, match="unknown contract 'police'"):
        load_contract("police")
    with pytest.raises(ContractError, match="unknown contract 'health'"):
        load_contract("health")  # a sector is not a contract
    with pytest.raises(ContractError, match="unknown contract"):
        load_contract("../contracts/health_chis")


def test_non_whitelisted_field_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health_chis.yaml").read_text())
    data["columns"].append({"name": "Ethnicity", "field": "ethnicity"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="not in the whitelist"):
        load_contract_file(bad)


def test_contract_must_map_required_fields(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health_chis.yaml").read_text())
    data["columns"] = [c for c in data["columns"] if c["field"] != "contact_route"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="contact_route"):
        load_contract_file(bad)


def test_missing_identity_is_reject_unless_the_contract_says_otherwise(tmp_path: Path) -> None:
    """An older contract file, without the key, keeps the old behaviour: a blank identity
    field rejects the row. Every shipped contract stages such rows (within the option's limits)."""
    assert {c.missing_identity for c in all_contracts().values()} == {"stage"}
    data = yaml.safe_load((CONTRACT_DIR / "health_chis.yaml").read_text())
    data.pop("missing_identity")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(data))
    contract = load_contract_file(old)
    assert contract.missing_identity == "reject"
    assert not any(contract.blank_allowed(c) for c in contract.columns)
    for option in ("with_identifier", "stage"):
        data["missing_identity"] = option
        old.write_text(yaml.safe_dump(data))
        allowed = {c.field for c in load_contract_file(old).columns if load_contract_file(old).blank_allowed(c)}
        assert allowed == {"given_name", "family_name", "date_of_birth", "sex", "postcode"}


@pytest.mark.parametrize("value", ["allow", "Stage", "", None, True, ["stage"]])
def test_an_unknown_missing_identity_value_is_refused(tmp_path: Path, value: object) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health_chis.yaml").read_text())
    data["missing_identity"] = value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="missing_identity"):
        load_contract_file(bad)


def test_contract_must_name_its_sector(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health_epr.yaml").read_text())
    for sector in (None, "police"):
        if sector is None:
            data.pop("sector")
        else:
            data["sector"] = sector
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(data))
        with pytest.raises(ContractError, match="sector"):
            load_contract_file(bad)


def test_generated_docs_are_up_to_date() -> None:
    from childindex.simulation.synthetic.examples import example_rows

    pages = render_all(example_rows())
    assert sorted(pages) == sorted(
        [f"{name}.md" for name in SHIPPED] + [f"{name}.schema.json" for name in SHIPPED] + ["README.md"]
    )
    for name, text in pages.items():
        on_disk = ROOT / "docs" / "contracts" / name
        assert on_disk.read_text(encoding="utf-8") == text, f"run 'childindex contracts docs' ({name})"
    for name in SHIPPED:
        page = pages[f"{name}.md"]
        assert f"`{name}`" in page
        for col in load_contract(name).columns:
            assert f"`{col.name}`" in page
        assert f"[`{name}`]({name}.md)" in pages["README.md"]
    assert "| delimiter | tab |" in pages["health_epr.md"]
    # Each page says what happens to a row with a blank identity field, and what to do.
    assert "| `Forename` | given_name | yes, may be blank |" in pages["health_chis.md"]
    assert "| `ServiceCode` | service | yes |" in pages["health_chis.md"]
    assert "`missing_identity: stage`" in pages["health_chis.md"]
    assert "or send the NHS number (`NHSNumber`)." in pages["health_chis.md"]
    assert "or send the UPN (`UPN`)." in pages["education_mis.md"]
    assert "or send the NHS number (`NHS_NO`) or UPN (`UPN`)." in pages["social_care_cms.md"]


def _cells(line: str) -> int:
    """Cells in a Markdown table row (pipes escaped or inside backticks do not separate)."""
    line = re.sub(r"`[^`]*`", "code", line.replace("\\|", ""))
    return len(line.strip().strip("|").split("|"))


def test_generated_tables_are_well_formed() -> None:
    """Each table's delimiter row and body rows have as many cells as its header, or a
    Markdown renderer shows no table at all."""
    for name, text in render_all().items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("| ---"):
                width = _cells(lines[i - 1])
                assert _cells(line) == width, (name, line)
                for row in lines[i + 1 :]:
                    if not row.startswith("|"):
                        break
                    assert _cells(row) == width, (name, row)


@pytest.mark.parametrize(
    ("contract", "bad_column"),
    [("health_epr", "service"), ("social_care_ehm", "EpisodeType")],
)
def test_new_contracts_read_and_check_a_rendered_file(data_dir: Path, tmp_path: Path, contract: str, bad_column: str):
    """The layouts added with the registry: a file in each is read with its own delimiter,
    dates and codes, and its rows checked, naming its own columns."""
    from childindex.intake.check import check_file, unregistered
    from childindex.settings import load_settings

    c = load_contract(contract)
    sector = c.sector
    rows = [child(i, sector) for i in range(1, 6)] + [child(6, sector, service="Q")]
    data = render(contract, rows)
    assert c.file.delimiter.encode() in data.splitlines()[0]
    path = tmp_path / file_name(contract, NIGHT)
    path.write_bytes(data)
    receipt = check_file(load_settings(), unregistered(contract), path, NIGHT)
    assert (receipt.contract, receipt.contract_version) == (contract, c.version)
    assert receipt.outcome == "accepted_with_rejections", receipt.to_text()
    assert (receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (6, 5, 1)
    assert [(r.row, r.column, r.rule) for r in receipt.rejected_rows] == [(7, bad_column, "code_set")]
    assert receipt.night == NIGHT.isoformat()
    assert receipt.columns_dropped == [] and receipt.optional_columns_missing == []
    # Read as another contract's, the same bytes are named for their real delimiter, and each
    # missing column for the column that holds its field (the header names every field).
    other = "health_chis" if sector == "health" else "social_care_cms"
    wrong = tmp_path / "other" / file_name(other, NIGHT)
    wrong.parent.mkdir()
    wrong.write_bytes(data)
    receipt = check_file(load_settings(), unregistered(other), wrong, NIGHT)
    assert receipt.outcome == "rejected"
    assert [p["rule"] for p in receipt.file_problems] == ["delimiter", "missing_columns"]
    missing = receipt.file_problems[1]["detail"]
    theirs = {col.field: col.name for col in c.columns}
    for col in load_contract(other).columns:
        if col.required:
            assert f"{col.name} (column " in missing and f" is {theirs[col.field]}: rename it {col.name}?)" in missing


def test_a_file_name_must_fit_its_pattern_whole_and_in_ascii_digits() -> None:
    """Issue 18, small holes: ``re.match`` with a pattern ending ``$`` let a name with a trailing
    newline through (it failed on the code before this test), and ``\\d`` matches any script's
    digits."""
    from childindex.contracts import contract_names

    for name, good, bad in [
        ("health_chis", "health_2026-11-24.csv", "health_2026-11-24.csv\n"),
        ("education_mis", "EDU_PUPILS_20261124.csv", "EDU_PUPILS_20261124.csv\n"),
        ("health_chis", "health_2026-11-24.csv", "health_٢٠٢٦-11-24.csv"),  # Arabic-Indic digits
        ("social_care_cms", "sc_extract_20261124.txt", "sc_extract_２０２６1124.txt"),  # fullwidth digits
    ]:
        assert load_contract(name).match_name(good), good
        assert load_contract(name).match_name(bad) is None, repr(bad)
    for name in contract_names():  # every shipped contract: no name with a newline fits
        contract = load_contract(name)
        assert all(contract.match_name(n + "\n") is None for n in ("x", "health_2026-11-24.csv"))
