from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from childindex.contracts import AGENCIES, all_contracts, load_contract, load_contract_file
from childindex.contracts.docs import render_all
from childindex.errors import ContractError
from childindex.whitelist import SOURCE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "plugins" / "childindex" / "contracts"


def test_every_agency_has_a_valid_contract() -> None:
    contracts = all_contracts()
    assert sorted(contracts) == sorted(AGENCIES)
    for agency, c in contracts.items():
        assert c.agency == agency and c.version >= 1
        assert {col.field for col in c.columns} <= set(SOURCE_FIELDS)
        assert c.column_for("local_id").identifier


def test_agencies_differ_as_real_systems_do() -> None:
    cs = all_contracts().values()
    assert len({c.file.encoding for c in cs}) == 3
    assert len({c.date_format for c in cs}) == 3
    assert len({c.file.delimiter for c in cs}) >= 2


def test_file_names() -> None:
    assert load_contract("health").match_name("health_2026-11-24.csv").group("night") == "2026-11-24"
    assert load_contract("education").match_name("EDU_PUPILS_20261124.csv")
    assert load_contract("social_care").match_name("sc_extract_20261124.txt")
    assert load_contract("health").match_name("health_2026-11-24.csv.part") is None


def test_unknown_agency() -> None:
    with pytest.raises(ContractError, match="unknown agency"):
        load_contract("police")


def test_non_whitelisted_field_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health.yaml").read_text())
    data["columns"].append({"name": "Ethnicity", "field": "ethnicity"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="not in the whitelist"):
        load_contract_file(bad)


def test_contract_must_map_required_fields(tmp_path: Path) -> None:
    data = yaml.safe_load((CONTRACT_DIR / "health.yaml").read_text())
    data["columns"] = [c for c in data["columns"] if c["field"] != "contact_route"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match="contact_route"):
        load_contract_file(bad)


def test_generated_docs_are_up_to_date() -> None:
    pages = render_all()
    for name, text in pages.items():
        on_disk = ROOT / "docs" / "contracts" / name
        assert on_disk.read_text(encoding="utf-8") == text, f"run 'childindex contracts docs' ({name})"
    for agency in AGENCIES:
        page = pages[f"{agency}.md"]
        for col in load_contract(agency).columns:
            assert f"`{col.name}`" in page
