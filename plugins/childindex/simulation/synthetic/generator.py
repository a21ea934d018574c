"""One night of synthetic extracts for every registered organisation, and that night's truth
(see the package docstring)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from childindex.organisations.registry import Registry
from childindex.simulation.synthetic.areas import World
from childindex.simulation.synthetic.extracts import TRUTH_SCHEMA, truth_path, write_extract
from childindex.simulation.synthetic.noise import NoiseConfig
from childindex.simulation.synthetic.population import Population, build_population
from childindex.simulation.synthetic.records import Records, records_since
from childindex.whitelist import SECTORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationResult:
    night: date
    files: dict[str, Path]  # organisation code -> final extract path
    rows: dict[str, int]  # organisation code -> data rows written
    truth_path: Path
    children: int  # children in the population at this night


def generate_night(
    drop_root: Path,
    truth_root: Path,
    *,
    registry: Registry,
    children: int = 10_000,
    seed: int = 42,
    first_night: date = date(2026, 11, 24),
    night_number: int = 0,
    noise: NoiseConfig = NoiseConfig(),  # noqa: B008 (frozen, immutable)
) -> GenerationResult:
    """Write night ``night_number``'s extract for every registered organisation, and that
    night's truth.

    Each organisation's extract goes to its drop folder (``registry.drop_folder``: by
    default ``drop_root/<code>``) under its contract's file name and completion convention;
    the truth goes to ``truth_root/night=YYYY-MM-DD/truth.parquet`` and must not be under
    ``drop_root``. Existing outputs for the same night are replaced. Every organisation
    gets a file, empty (header only) on a night nothing of its changed.
    """
    drop_root, truth_root = Path(drop_root), Path(truth_root)
    if truth_root.resolve().is_relative_to(drop_root.resolve()):
        raise ValueError("truth_root must not be inside drop_root: organisations never see truth")
    night = first_night + timedelta(days=night_number)
    world = World(registry)
    pop = build_population(
        children, seed=seed, first_night=first_night, night_number=night_number, noise=noise, world=world
    )
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
        for code, contract, rec in deliveries(pop, night_number - 1 if night_number else -(10**6)):
            folder = registry.drop_folder(code, drop_root)
            files[code], rows[code] = write_extract(pop, code, contract, rec, night, folder, writer)
    tmp.replace(truth)
    return GenerationResult(night=night, files=files, rows=rows, truth_path=truth, children=pop.children)


def deliveries(pop: Population, after: int) -> list[tuple[str, str, Records]]:
    """(organisation code, contract, records) of the rows for the period (``after``, tonight],
    one entry per registered organisation (an empty one when nothing of it changed)."""
    assert pop.world is not None
    out = []
    for sector in SECTORS:
        rec = records_since(pop, sector, after)
        holder = pop.world.holder(pop.seed, sector, pop.household[rec.p], rec.area)
        for i, org in enumerate(pop.world.organisations):
            if org.sector == sector:
                out.append((org.code, org.contract, rec.take(np.flatnonzero(holder == i))))
    return out
