"""Shared synthetic outputs for the generator tests (built once per test session): two nights
for the tests' registry (tests/organisations.yaml) and two for the other extract layouts."""

from __future__ import annotations

import pytest

from childindex.organisations import Registry, load_registry
from childindex.simulation.synthetic import build_population, generate_night
from childindex.simulation.synthetic.areas import World
from tests.conftest import TEST_REGISTRY
from tests.simulation.synthetic_helpers import CHILDREN, FIRST_NIGHT, Run, other_layouts


def _run(root, registry: Registry) -> Run:
    drop, truth = root / "drop", root / "truth"
    nights = {
        k: generate_night(
            drop, truth, registry=registry, children=CHILDREN, seed=42, first_night=FIRST_NIGHT, night_number=k
        )
        for k in (0, 1)
    }
    world = World(registry)
    pops = {
        k: build_population(CHILDREN, seed=42, first_night=FIRST_NIGHT, night_number=k, world=world) for k in (0, 1)
    }
    return Run(drop=drop, truth_root=truth, nights=nights, populations=pops, registry=registry)


@pytest.fixture(scope="session")
def test_registry() -> Registry:
    return load_registry(TEST_REGISTRY)


@pytest.fixture(scope="session")
def run(tmp_path_factory, test_registry: Registry) -> Run:
    return _run(tmp_path_factory.mktemp("synthetic"), test_registry)


@pytest.fixture(scope="session")
def other_run(tmp_path_factory) -> Run:
    return _run(tmp_path_factory.mktemp("synthetic-other"), other_layouts())


@pytest.fixture(params=["health_chis", "education_mis", "social_care_cms", "health_epr", "social_care_ehm"])
def layout(request, run: Run, other_run: Run) -> tuple[Run, str]:
    """(the run whose registry sends it, an organisation's code) for every extract layout."""
    for candidate in (run, other_run):
        for org in candidate.registry.organisations:
            if org.contract == request.param:
                return candidate, org.code
    raise AssertionError(request.param)
