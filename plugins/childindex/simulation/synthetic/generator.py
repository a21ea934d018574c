"""One night of synthetic extracts for every agency, and that night's truth (see the package docstring)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from childindex.contracts.contract import AGENCIES
from childindex.simulation.synthetic.extracts import TRUTH_SCHEMA, truth_path, write_extract
from childindex.simulation.synthetic.noise import NoiseConfig
from childindex.simulation.synthetic.population import build_population

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationResult:
    night: date
    files: dict[str, Path]  # agency -> final extract path
    rows: dict[str, int]  # agency -> data rows written
    truth_path: Path
    children: int  # children in the population at this night


def generate_night(
    drop_root: Path,
    truth_root: Path,
    *,
    children: int = 10_000,
    seed: int = 42,
    first_night: date = date(2026, 11, 24),
    night_number: int = 0,
    noise: NoiseConfig = NoiseConfig(),  # noqa: B008 (frozen, immutable)
) -> GenerationResult:
    """Write night ``night_number``'s extract for every agency, and that night's truth.

    Extracts go to ``drop_root/<agency>/<contract file name>`` (with the contract's
    completion convention); the truth goes to ``truth_root/night=YYYY-MM-DD/truth.parquet``
    and must not be under ``drop_root``. Existing outputs for the same night are replaced.
    """
    drop_root, truth_root = Path(drop_root), Path(truth_root)
    if truth_root.resolve().is_relative_to(drop_root.resolve()):
        raise ValueError("truth_root must not be inside drop_root: agencies never see truth")
    night = first_night + timedelta(days=night_number)
    pop = build_population(children, seed=seed, first_night=first_night, night_number=night_number, noise=noise)
    if pop.children > pop.nhs_capacity:
        log.warning(
            "%d of %d children get no NHS number: the 999 test range holds only %d valid numbers",
            pop.children - pop.nhs_capacity,
            pop.children,
            pop.nhs_capacity,
        )
    truth = truth_path(truth_root, night)
    truth.parent.mkdir(parents=True, exist_ok=True)
    tmp = truth.with_name(truth.name + ".part")
    files, rows = {}, {}
    with pq.ParquetWriter(tmp, TRUTH_SCHEMA) as writer:
        for agency in AGENCIES:
            files[agency], rows[agency] = write_extract(pop, agency, night, drop_root, writer)
    tmp.replace(truth)
    return GenerationResult(night=night, files=files, rows=rows, truth_path=truth, children=pop.children)
