"""Registries written by tests that need other organisations than tests/organisations.yaml's.

Each writes its registry under a test's own folder and points CHILDINDEX_ORGANISATIONS_FILE
at it (needs the ``data_dir`` fixture, which isolates the rest of the settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TEST_REGISTRY

# The tests' one area; its postcode districts hold helpers.child()'s postcode (LS6 2AB).
AREA = {"code": "E06000047", "name": "County Durham", "la_number": 840, "postcode_districts": ["DH1", "LS6"]}


# Two areas and an NHS organisation in each (tests extend it with more organisations).
TWO_HEALTH_ORGANISATIONS = """
version: 1
areas:
  - {code: E06000047, name: County Durham, postcode_districts: [DH1, LS6]}
  - {code: E06000005, name: Darlington, postcode_districts: [DL1]}
organisations:
  - {code: RH1, name: Durham health (synthetic), sector: health, contract: health_chis, areas: [E06000047]}
  - {code: RX2, name: Darlington health (synthetic), sector: health, contract: health_chis, areas: [E06000005]}
"""


def org(code: str, sector: str, contract: str, areas: tuple[str, ...] = ("E06000047",), **own: Any) -> dict[str, Any]:
    """One registry entry (``own``: drop_folder, outbox, max_rejected_share)."""
    return {
        "code": code,
        "name": f"Test {code} (synthetic)",
        "sector": sector,
        "contract": contract,
        "areas": list(areas),
        **own,
    }


def registry_with(**own: dict[str, Any]) -> dict[str, Any]:
    """tests/organisations.yaml as data, with some organisations' entries extended (by code)."""
    data = yaml.safe_load(TEST_REGISTRY.read_text(encoding="utf-8"))
    for entry in data["organisations"]:
        entry.update(own.get(str(entry["code"]), {}))
    return data


def use_registry(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    organisations: list[dict[str, Any]] | None = None,
    areas: list[dict[str, Any]] | None = None,
    *,
    data: dict[str, Any] | None = None,
):
    """Write a registry to ``folder``, point CHILDINDEX_ORGANISATIONS_FILE at it and return
    settings that use it (the data dir's folders made). Needs the ``data_dir`` fixture."""
    if data is None:
        data = {"version": 1, "areas": areas or [AREA], "organisations": organisations or []}
    return use_registry_text(monkeypatch, folder, yaml.safe_dump(data, sort_keys=False))


def use_registry_text(monkeypatch: pytest.MonkeyPatch, folder: Path, text: str):
    """The same, for a registry written out as YAML text."""
    from childindex.settings import load_settings

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "organisations.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(path))
    settings = load_settings()
    assert settings.organisations_file == path
    settings.ensure_dirs()
    return settings
