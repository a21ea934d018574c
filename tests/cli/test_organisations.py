"""``childindex organisations list|show|validate`` and ``childindex contracts list``: the registry
and the contracts as an operator sees them; a broken registry entry is named, with its field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childindex.cli import app
from childindex.contracts import all_contracts
from childindex.contracts.describe import example_file_name, file_name_template
from childindex.organisations import load_registry

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # tables are not wrapped or cut
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "organisations.yaml"

TWO_AREAS = """version: 1
areas:
  - {code: E06000047, name: County Durham, la_number: 840, postcode_districts: [DH1]}
  - {code: E06000005, name: Darlington, la_number: 841, postcode_districts: [DL1]}
organisations:
  - {code: RH1, name: Health one, sector: health, contract: health_chis, areas: [E06000047, E06000005]}
  - {code: "840", name: Durham education, sector: education, contract: education_mis, areas: [E06000047]}
  - {code: "841", name: Darlington education, sector: education, contract: education_mis, areas: [E06000005],
     drop_folder: sftp/darlington, max_rejected_share: 0.05}
  - {code: E06000005, name: Darlington social care, sector: social_care, contract: social_care_ehm,
     areas: [E06000005]}
"""


@pytest.fixture()
def two_areas(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "two-areas.yaml"
    path.write_text(TWO_AREAS, encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(path))
    return path


def _rows(output: str) -> dict[str, str]:
    """Table rows of ``organisations list`` by their first cell (the code)."""
    rows = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5 and cells[0] not in ("code", ""):
            rows[cells[0]] = line
    return rows


def test_list_shows_every_organisation_and_filters_by_sector_and_area(two_areas: Path) -> None:
    result = runner.invoke(app, ["organisations", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert list(rows) == ["RH1", "840", "841", "E06000005"]
    assert "education_mis" in rows["841"] and "Darlington education" in rows["841"]
    assert "E06000047, E06000005" in rows["RH1"]
    assert "4 of 4 organisations; 2 areas" in result.output and str(two_areas) in result.output
    health = runner.invoke(app, ["organisations", "list", "--sector", "health"], env=WIDE)
    assert list(_rows(health.output)) == ["RH1"] and "1 of 4 organisations" in health.output
    darlington = runner.invoke(app, ["organisations", "list", "--area", "E06000005"], env=WIDE)
    assert list(_rows(darlington.output)) == ["RH1", "841", "E06000005"]
    assert "3 of 4 organisations" in darlington.output


def test_show_gives_one_organisation_with_its_areas_and_resolved_folders(two_areas: Path) -> None:
    from childindex.settings import load_settings

    settings = load_settings()
    result = runner.invoke(app, ["organisations", "show", "841", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["code"] == "841" and shown["sector"] == "education" and shown["contract"] == "education_mis"
    assert shown["areas"] == ["E06000005"] and shown["area_names"] == ["Darlington"]
    assert shown["max_rejected_share"] == 0.05
    assert shown["drop_folder_resolved"] == str(settings.drop_root / "sftp" / "darlington")
    assert shown["outbox_resolved"] == str(settings.outbox_root / "841")
    several = json.loads(runner.invoke(app, ["organisations", "show", "RH1", "--json"]).output)
    assert several["area_names"] == ["County Durham", "Darlington"]
    human = runner.invoke(app, ["organisations", "show", "841"]).output.splitlines()
    assert human[0] == "841: Darlington education"
    assert "E06000005 Darlington" in human[3] and "0.05 (its own)" in human[4]
    assert human[-2:] == [
        f"drop folder: {settings.drop_root / 'sftp' / 'darlington'}",
        f"outbox: {settings.outbox_root / '841'}",
    ]
    unknown = runner.invoke(app, ["organisations", "show", "RX9"])
    assert unknown.exit_code == 2 and "no organisation with code 'RX9'" in unknown.output
    assert "Traceback" not in unknown.output


def test_validate_passes_the_configured_and_the_shipped_registries(two_areas: Path) -> None:
    configured = runner.invoke(app, ["organisations", "validate"], env=WIDE)
    assert configured.exit_code == 0, configured.output
    assert f"{two_areas}: valid, version 1: 4 organisations (2 education, 1 health, 1 social_care) in 2 areas" in (
        configured.output
    )
    shipped = runner.invoke(app, ["organisations", "validate", str(SHIPPED)], env=WIDE)
    assert shipped.exit_code == 0, shipped.output
    registry = load_registry(SHIPPED)
    counts = ", ".join(f"{len(registry.in_sector(s))} {s}" for s in ("education", "health", "social_care"))
    assert len(registry.organisations) >= 29 and len(registry.areas) >= 12
    assert f"{len(registry.organisations)} organisations ({counts}) in {len(registry.areas)} areas" in shipped.output


# (what is broken, the entry as written, what the one line must name)
BROKEN = [
    (
        "a health organisation with an authority's number for a code",
        '  - {code: "840", name: X, sector: health, contract: health_chis, areas: [E06000047]}',
        ["organisations[4] (code 840)", "field code", "health", "ODS code"],
    ),
    (
        "an unknown contract",
        '  - {code: "842", name: X, sector: education, contract: education_sims, areas: [E06000047]}',
        ["organisations[4] (code 842)", "field contract", "no contract 'education_sims'", "education_mis"],
    ),
    (
        "another sector's contract",
        '  - {code: "842", name: X, sector: education, contract: health_chis, areas: [E06000047]}',
        ["organisations[4] (code 842)", "field contract", "'health_chis' is a health contract, not education"],
    ),
    (
        "an unknown area",
        '  - {code: "842", name: X, sector: education, contract: education_mis, areas: [E06000099]}',
        ["organisations[4] (code 842)", "field areas", "E06000099 not in the registry's areas"],
    ),
    (
        "a duplicate code",
        '  - {code: "840", name: X, sector: education, contract: education_mis, areas: [E06000047]}',
        ["organisations[4] (code 840)", "field code", "already used by organisations[1]"],
    ),
    (
        "an unknown sector",
        '  - {code: "842", name: X, sector: police, contract: education_mis, areas: [E06000047]}',
        ["organisations[4] (code 842)", "field sector"],
    ),
    (
        "a field the registry does not know",
        '  - {code: "842", name: X, sector: education, contract: education_mis, areas: [E06000047], ssh_key: x}',
        ["organisations[4] (code 842)", "field ssh_key"],
    ),
]


@pytest.mark.parametrize(("entry", "names"), [(e, n) for _, e, n in BROKEN], ids=[w for w, _, _ in BROKEN])
def test_validate_names_the_broken_entry_and_field_and_exits_2(
    data_dir: Path, tmp_path: Path, entry: str, names: list[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TWO_AREAS + entry + "\n", encoding="utf-8")
    result = runner.invoke(app, ["organisations", "validate", str(broken)], env=WIDE)
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())  # one message, however the terminal wrapped it
    assert line.startswith("error: ") and str(broken) in line
    for name in names:
        assert name in line, (name, line)
    assert "Traceback" not in result.output and "valid, version" not in result.output
    # The first four entries are fine: only the broken one is named as at fault.
    assert not any(f"organisations[{i}] (code" in line for i in range(4))


def test_a_broken_configured_registry_stops_every_command_with_exit_2(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TWO_AREAS.replace("[E06000005],\n", "[E09999999],\n"), encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(broken))
    for args in (["organisations", "validate"], ["organisations", "list"], ["intake"]):
        result = runner.invoke(app, args, env=WIDE)
        line = " ".join(result.output.split())
        assert result.exit_code == 2, (args, result.output)
        assert "organisations[2] (code 841): field areas: E09999999 not in the registry's areas" in line, args
    (tmp_path / "not-yaml.yaml").write_text("version: 1\nareas: [\n", encoding="utf-8")
    not_yaml = runner.invoke(app, ["organisations", "validate", str(tmp_path / "not-yaml.yaml")], env=WIDE)
    assert not_yaml.exit_code == 2 and "not valid YAML at line" in not_yaml.output
    missing = runner.invoke(app, ["organisations", "validate", str(tmp_path / "none.yaml")], env=WIDE)
    assert missing.exit_code == 2 and "cannot read" in missing.output and "Traceback" not in missing.output


def test_contracts_list_names_every_contract_with_its_sector() -> None:
    result = runner.invoke(app, ["contracts", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    contracts = all_contracts()
    assert set(contracts) == {"education_mis", "health_chis", "health_epr", "social_care_cms", "social_care_ehm"}
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip()) for line in result.output.splitlines())}
    assert set(contracts) <= set(rows)
    for name, contract in contracts.items():
        named = file_name_template(contract)
        assert rows[name] == [name, contract.sector, str(contract.version), named, contract.title]
        assert named is not None and re.fullmatch(contract.file.pattern, example_file_name(contract) or "")
    listed = json.loads(runner.invoke(app, ["contracts", "list", "--json"]).output)
    assert [(c["contract"], c["file_pattern"]) for c in listed] == [(n, c.file.pattern) for n, c in contracts.items()]
    shown = runner.invoke(app, ["contracts", "show", "health_epr", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["contract"] == "health_epr"
    human = runner.invoke(app, ["contracts", "show", "health_epr"]).output
    assert human.startswith(f"health_epr: {contracts['health_epr'].title}\n")
    assert all(column.name in human for column in contracts["health_epr"].columns)
    old = runner.invoke(app, ["contracts", "show", "health"])  # an agency's name is no contract's
    assert old.exit_code == 2 and "unknown contract 'health'" in old.output and "health_chis" in old.output
