"""Helpers shared by the synthetic generator tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from childindex.contracts import load_contract
from childindex.organisations import Registry, parse_registry
from childindex.simulation.synthetic import GenerationResult, Population, true_identity_frame

FIRST_NIGHT = date(2026, 11, 24)
CHILDREN = 20_000

# The layouts the tests' registry does not send (tests/organisations.yaml sends health_chis,
# education_mis and social_care_cms), each from the one organisation of its sector serving one
# area, as in the tests' registry: every extract type the generator writes is checked.
OTHER_LAYOUTS = """version: 1
areas:
  - {code: E06000005, name: Darlington, la_number: 841, postcode_districts: [DL1, DL2, DL3]}
organisations:
  - {code: RX1, name: Test health EPR (synthetic), sector: health, contract: health_epr, areas: [E06000005]}
  - {code: "841", name: Test education (synthetic), sector: education, contract: education_mis, areas: [E06000005]}
  - {code: E06000005, name: Test early help (synthetic), sector: social_care, contract: social_care_ehm,
     areas: [E06000005]}
"""


def other_layouts() -> Registry:
    return parse_registry(OTHER_LAYOUTS, "OTHER_LAYOUTS")


@dataclass
class Run:
    """Nights generated for one registry of one organisation per sector; ``org`` is an
    organisation's code or a sector (that sector's organisation in this registry)."""

    drop: Path
    truth_root: Path
    nights: dict[int, GenerationResult]
    populations: dict[int, Population]
    registry: Registry

    def code(self, org: str) -> str:
        if org in self.registry.by_code:
            return org
        (only,) = self.registry.in_sector(org)
        return only.code

    def contract(self, org: str) -> str:
        return self.registry.get(self.code(org)).contract

    def extract(self, night: int, org: str) -> pd.DataFrame:
        return read_extract(self.nights[night].files[self.code(org)], self.contract(org))

    def truth(self, night: int) -> pd.DataFrame:
        return pd.read_parquet(self.nights[night].truth_path)

    def joined(self, night: int, org: str) -> pd.DataFrame:
        """The extract by contract field name, with the true person and identity columns."""
        contract = load_contract(self.contract(org))
        df = self.extract(night, org)
        fields = df.rename(columns={c.name: c.field for c in contract.columns})
        truth = self.truth(night)
        truth = truth[truth.organisation == self.code(org)].set_index("local_id")
        fields["person_id"] = truth.loc[fields["local_id"], "person_id"].to_numpy()
        true = true_identity_frame(self.populations[night], fields["person_id"].to_numpy())
        return fields.join(true.drop(columns="person_id").add_prefix("true_"))


def read_extract(path: Path, contract_name: str) -> pd.DataFrame:
    contract = load_contract(contract_name)
    return pd.read_csv(
        path,
        sep=contract.file.delimiter,
        encoding=contract.file.encoding,
        dtype=str,
        keep_default_na=False,
        na_values=[],
    )


def as_dates(values: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(values.replace("", np.nan), format=fmt, errors="raise")
