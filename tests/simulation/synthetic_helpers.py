"""Helpers shared by the synthetic generator tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from childindex.contracts import load_contract
from childindex.simulation.synthetic import GenerationResult, Population, true_identity_frame

FIRST_NIGHT = date(2026, 11, 24)
CHILDREN = 20_000


@dataclass
class Run:
    drop: Path
    truth_root: Path
    nights: dict[int, GenerationResult]
    populations: dict[int, Population]

    def extract(self, night: int, agency: str) -> pd.DataFrame:
        return read_extract(self.nights[night].files[agency], agency)

    def truth(self, night: int) -> pd.DataFrame:
        return pd.read_parquet(self.nights[night].truth_path)

    def joined(self, night: int, agency: str) -> pd.DataFrame:
        """The extract by contract field name, with the true person and identity columns."""
        contract = load_contract(agency)
        df = self.extract(night, agency)
        fields = df.rename(columns={c.name: c.field for c in contract.columns})
        truth = self.truth(night)
        truth = truth[truth.agency == agency].set_index("local_id")
        fields["person_id"] = truth.loc[fields["local_id"], "person_id"].to_numpy()
        true = true_identity_frame(self.populations[night], fields["person_id"].to_numpy())
        return fields.join(true.drop(columns="person_id").add_prefix("true_"))


def read_extract(path: Path, agency: str) -> pd.DataFrame:
    contract = load_contract(agency)
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
