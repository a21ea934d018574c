"""An example row of every contract, from the generator: the contract pages show it under
the header line (``childindex contracts docs``), so the example is what a real export of
the layout looks like, synthetic throughout (999-range NHS numbers, Ofcom drama-range phone
numbers, example.org mailboxes).
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from childindex.contracts.contract import contract_names, load_contract
from childindex.organisations.registry import parse_registry
from childindex.simulation.synthetic.generator import generate_night

# Two areas: one organisation per contract, and per sector and area.
EXAMPLE_REGISTRY = """version: 1
areas:
  - {code: E06000047, name: County Durham, la_number: 840, postcode_districts: [DH1, DH7]}
  - {code: E06000005, name: Darlington, la_number: 841, postcode_districts: [DL1, DL3]}
organisations:
  - {code: RH1, name: Example health (synthetic), sector: health, contract: health_chis, areas: [E06000047]}
  - {code: RX1, name: Example health EPR (synthetic), sector: health, contract: health_epr, areas: [E06000005]}
  - {code: "840", name: Example education (synthetic), sector: education, contract: education_mis, areas: [E06000047]}
  - {code: E06000047, name: Example social care (synthetic), sector: social_care, contract: social_care_cms,
     areas: [E06000047]}
  - {code: E06000005, name: Example early help (synthetic), sector: social_care, contract: social_care_ehm,
     areas: [E06000005]}
"""
EXAMPLE_CHILDREN = 400  # enough for every contract's file to hold a row with every column filled


def example_rows() -> dict[str, list[str]]:
    """Each contract's example row: its columns' values, in the contract's column order, from
    the first row of a generated initial load that fills the most of them."""
    registry = parse_registry(EXAMPLE_REGISTRY, "EXAMPLE_REGISTRY")
    rows: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="childindex-examples-") as scratch:
        result = generate_night(
            Path(scratch) / "drop", Path(scratch) / "truth", registry=registry, children=EXAMPLE_CHILDREN
        )
        for code, path in result.files.items():
            contract = load_contract(registry.get(code).contract)
            text = path.read_bytes().decode(contract.file.encoding)
            reader = csv.DictReader(io.StringIO(text), delimiter=contract.file.delimiter)
            candidates = [[row[c] for c in contract.column_names] for row in reader]
            rows[contract.name] = max(candidates, key=lambda values: sum(bool(v) for v in values))
    missing = set(contract_names()) - set(rows)
    if missing:
        raise AssertionError(f"no example for {sorted(missing)}: add them to EXAMPLE_REGISTRY")
    return rows
