"""The organisations registry: a file, checked as a whole, whose errors name entry and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from childindex.errors import RegistryError
from childindex.organisations.registry import load_registry, parse_registry
from childindex.settings import REGISTRY_FILE

AREAS = [
    {"code": "E06000047", "name": "County Durham", "la_number": 840, "postcode_districts": ["DH1", "DH2"]},
    {"code": "E06000005", "name": "Darlington", "la_number": 841, "postcode_districts": ["DL1"]},
]
ORGS = [
    {"code": "840", "name": "Durham education", "sector": "education", "contract": "education_mis",
     "areas": ["E06000047"]},
    {"code": "E06000047", "name": "Durham social care", "sector": "social_care", "contract": "social_care_ehm",
     "areas": ["E06000047"]},
    {"code": "RXX", "name": "A trust", "sector": "health", "contract": "health_chis",
     "areas": ["E06000047", "E06000005"]},
]  # fmt: skip


def _text(areas=AREAS, organisations=ORGS, **top) -> str:
    return yaml.safe_dump({"version": 1, "areas": areas, "organisations": organisations, **top})


def test_a_good_registry_reads_whole() -> None:
    registry = parse_registry(_text(), "r.yaml")
    assert [o.code for o in registry.organisations] == ["840", "E06000047", "RXX"]
    assert registry.get("RXX").areas == ("E06000047", "E06000005")
    assert [o.code for o in registry.in_sector("health")] == ["RXX"]
    assert registry.district_areas() == {"DH1": "E06000047", "DH2": "E06000047", "DL1": "E06000005"}
    with pytest.raises(RegistryError, match="no organisation with code 'NOPE'"):
        registry.get("NOPE")


def test_the_repositorys_registry_is_the_demos_world() -> None:
    registry = load_registry(REGISTRY_FILE)
    assert len(registry.areas) >= 10 and len(registry.organisations) >= 20
    assert {o.sector for o in registry.organisations} == {"education", "health", "social_care"}
    assert {o.contract for o in registry.organisations} == {
        "education_mis", "health_chis", "health_epr", "social_care_cms", "social_care_ehm"}  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"code": "841"}, "organisations[2] (code 841): field code: a health organisation's code must be an ODS"),
        ({"code": "RX"}, "field code: String should have at least 3 characters"),
        ({"sector": "helth"}, "organisations[2] (code RXX): field sector: Input should be"),
        ({"contract": "health_xyz"}, "organisations[2] (code RXX): field contract: no contract 'health_xyz'"),
        ({"contract": "education_mis"}, "field contract: 'education_mis' is a education contract, not health"),
        ({"areas": ["E09999999"]}, "organisations[2] (code RXX): field areas: E09999999 not in the registry's areas"),
        ({"areas": []}, "organisations[2] (code RXX): field areas: Tuple should have at least 1 item"),
        ({"code": "840"}, "must be an ODS code"),
        ({"colour": "blue"}, "organisations[2] (code RXX): field colour: Extra inputs are not permitted"),
        ({"max_rejected_share": 2}, "field max_rejected_share: Input should be less than or equal to 1"),
    ],
)
def test_a_broken_entry_is_named_with_its_field(entry: dict, expected: str) -> None:
    organisations = [*ORGS[:2], {**ORGS[2], **entry}]
    with pytest.raises(RegistryError) as err:
        parse_registry(_text(organisations=organisations), "r.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("r.yaml: ")


def test_codes_formats_follow_the_sector() -> None:
    ok = [
        {**ORGS[0], "code": "E10000016", "areas": ["E06000047"]},  # an authority's service by GSS code
        {**ORGS[2], "code": "R0B12"},  # a five-character ODS code
    ]
    assert parse_registry(_text(organisations=ok), "r.yaml")
    with pytest.raises(RegistryError, match="education organisation's code must be a DfE LA number"):
        parse_registry(_text(organisations=[{**ORGS[0], "code": "RTD"}]), "r.yaml")


def test_every_problem_is_reported_at_once() -> None:
    organisations = [*ORGS, {**ORGS[0], "name": "again"}, {**ORGS[2], "code": "R1", "sector": "nope"}]
    areas = [*AREAS, {**AREAS[1], "code": "E06000001", "postcode_districts": ["DL1"]}]
    with pytest.raises(RegistryError) as err:
        parse_registry(_text(areas=areas, organisations=organisations), "r.yaml")
    text = str(err.value)
    assert "r.yaml: 4 problem(s):" in text
    assert "organisations[3] (code 840): field code: already used by organisations[0]" in text
    assert "organisations[4] (code R1): field code:" in text and "organisations[4] (code R1): field sector:" in text
    assert "areas[2] (code E06000001): field postcode_districts: DL1 is also in E06000005" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: [1", "not valid YAML at line"),
        ("- just a list", "expected a mapping with version, areas and organisations"),
        (_text(version=0), "version: a whole number from 1"),
        (_text(extra={"x": 1}), "unexpected top-level keys: extra"),
        (_text(areas=[]), "areas: at least one area"),
        (_text(areas=[{**AREAS[0], "code": "W06000001"}]), "areas[0] (code W06000001): field code:"),
        (_text(areas=[{**AREAS[0], "postcode_districts": ["dh1", "DH 1"]}]), "2 entries are not postcode districts"),
    ],
)
def test_a_broken_file_says_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(RegistryError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_registry(text, "r.yaml")


def test_an_edited_file_is_read_again_and_a_missing_one_says_which_setting(tmp_path: Path) -> None:
    path = tmp_path / "organisations.yaml"
    path.write_text(_text(organisations=ORGS[:2]), encoding="utf-8")
    assert len(load_registry(path).organisations) == 2
    path.write_text(_text(), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert len(load_registry(path).organisations) == 3
    with pytest.raises(RegistryError, match="CHILDINDEX_ORGANISATIONS_FILE"):
        load_registry(tmp_path / "missing.yaml")


def test_folders_default_under_the_roots_and_may_be_set_per_organisation(tmp_path: Path) -> None:
    organisations = [*ORGS[:2], {**ORGS[2], "drop_folder": "/srv/sftp/rxx", "outbox": "nhs/rxx-out"}]
    registry = parse_registry(_text(organisations=organisations), "r.yaml")
    assert registry.drop_folder("840", tmp_path / "drop") == tmp_path / "drop" / "840"
    assert registry.drop_folder("RXX", tmp_path / "drop") == Path("/srv/sftp/rxx")
    assert registry.outbox("RXX", tmp_path / "out") == (tmp_path / "out" / "nhs" / "rxx-out").absolute()
