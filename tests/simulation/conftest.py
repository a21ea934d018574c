"""Shared synthetic outputs for the generator tests (built once per test session)."""

from __future__ import annotations

import pytest

from childindex.simulation.synthetic import build_population, generate_night
from tests.simulation.synthetic_helpers import CHILDREN, FIRST_NIGHT, Run


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("synthetic")
    drop, truth = root / "drop", root / "truth"
    nights = {
        k: generate_night(drop, truth, children=CHILDREN, seed=42, first_night=FIRST_NIGHT, night_number=k)
        for k in (0, 1)
    }
    pops = {k: build_population(CHILDREN, seed=42, first_night=FIRST_NIGHT, night_number=k) for k in (0, 1)}
    return Run(drop=drop, truth_root=truth, nights=nights, populations=pops)
