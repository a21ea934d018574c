"""A synthetic England: its organisations registry, and where households live and move.

Registry (:func:`england_registry`, :func:`write_registry`)
    For each chosen area (:func:`~childindex.simulation.england.geography.select_areas`): its education
    service (code: the DfE LA number, contract ``education_mis``, "<Area> education") and its children's
    social care service (code: the GSS code, "<Area> children's social care", contract ``social_care_cms``
    for areas in even rows of ``areas.csv`` and ``social_care_ehm`` for odd rows, about half each); then
    the synthetic NHS providers serving any chosen area (:func:`~.geography.nhs_providers`), each listing
    only the chosen areas it serves. A region's registry is a subset of England's: same codes, same
    contracts. ``region="North East"`` is the demo's world (12 areas, 30 organisations); all of England
    has 153 areas and 461 organisations.

Movement model (pure, vectorised over households, counter-based draws from
:mod:`childindex.simulation.rand`; households are processed in chunks of ``CHUNK``, so memory
stays bounded for 11 million)
    Home: each household's area is drawn with the areas' child-population weights (:func:`home_areas`).
    Children move with their household, so a rate per household is the rate per child.

    Moves: a household moves as a Poisson process of ``MOVES_PER_YEAR = 0.10`` moves a year
    (``NIGHTS_PER_YEAR`` nights), so about 9.5% of children change address at least once in a year.
    APPROXIMATE, from: the English Housing Survey finds roughly one household in ten moved in the previous
    year (far more among private renters, who hold many of the families with children), and the 2011 and
    2021 Censuses put the share of children aged 1-17 at a different address a year earlier at about 10%.

    Kind: a move crosses an upper-tier authority boundary with probability ``CROSS_SHARE = 0.40``, so
    ``CROSS_PER_YEAR = 0.04`` cross-authority moves per child per year (about 3.9% of children in a year).
    APPROXIMATE, from ONS internal migration estimates (moves between local authorities in England and
    Wales, by single year of age): children's rates between districts are about 4-5% a year, somewhat
    fewer crossing an upper-tier boundary since some district-to-district moves stay within a county.

    Destination of a cross-authority move: with probability ``NEIGHBOUR_SHARE = 0.70`` a neighbour in the
    same region (the area before or after in file order, :func:`~.geography.neighbours`), most moves being
    short; otherwise any other area of the world, weighted by child population. A within-authority move
    keeps the area (the caller draws a new address and district, e.g. with :func:`postcode_in_area` keyed
    on the household and the move's ``number``). The world is the ``areas`` passed (England by default):
    in a one-region world, moves out of the region are not modelled, and in a one-area world a cross move
    keeps the area.

    Nights: night 0 is the first night (home areas); moves fall on nights 1, 2, ...; a move on night ``m``
    is in effect from night ``m`` (``area_after_moves(..., night=m)`` reflects it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from childindex.simulation.england.geography import (
    LocalAuthority,
    child_weights,
    england,
    neighbours,
    nhs_providers,
    select_areas,
)
from childindex.simulation.rand import integers, pair_keys, uniform

MOVES_PER_YEAR = 0.10
CROSS_SHARE = 0.40
CROSS_PER_YEAR = MOVES_PER_YEAR * CROSS_SHARE
NEIGHBOUR_SHARE = 0.70
NIGHTS_PER_YEAR = 365
WITHIN, CROSS = 0, 1
SOCIAL_CARE_CONTRACTS = ("social_care_cms", "social_care_ehm")
CHUNK = 1 << 20


class MoveSchedule(NamedTuple):
    """Every move in a period, sorted by night, then household, then number.

    ``number`` counts a household's moves from 0: key a move's own draws (new address) on
    ``pair_keys(household, number)``.
    """

    household: np.ndarray  # int64 household ids
    night: np.ndarray  # int32, 1..nights
    kind: np.ndarray  # int8, WITHIN or CROSS
    number: np.ndarray  # int16


def england_registry(region: str | None = None, areas: int | None = None) -> dict:
    """The registry (a dict for :func:`~childindex.organisations.registry.parse_registry` once dumped
    as YAML) of England, one region, or the first ``areas`` areas of either (file order)."""
    chosen = select_areas(region, areas)
    codes = {a.code for a in chosen}
    organisations: list[dict] = []
    for a in chosen:
        organisations.append(
            _organisation(f"{a.la_number:03d}", f"{a.name} education", "education", "education_mis", [a.code])
        )
        organisations.append(
            _organisation(
                a.code,
                f"{a.name} children's social care",
                "social_care",
                SOCIAL_CARE_CONTRACTS[a.index % 2],
                [a.code],
            )
        )
    for p in nhs_providers():
        served = [c for c in p.areas if c in codes]
        if served:
            organisations.append(_organisation(p.code, p.name, "health", p.contract, served))
    return {
        "version": 1,
        "areas": [
            {"code": a.code, "name": a.name, "la_number": a.la_number, "postcode_districts": list(a.districts)}
            for a in chosen
        ],
        "organisations": organisations,
    }


def write_registry(path: Path | str, region: str | None = None, areas: int | None = None) -> Path:
    """Write :func:`england_registry` as YAML with a header saying it is generated and synthetic."""
    path = Path(path)
    registry = england_registry(region, areas)
    scope = region or "all of England"
    header = (
        "# GENERATED by childindex.simulation.england.write_registry "
        f"(region={region!r}, areas={areas!r}): do not edit by hand.\n"
        f"# SYNTHETIC: {scope}, {len(registry['areas'])} upper-tier authorities (real GSS codes, names and DfE\n"
        "# LA numbers), INVENTED postcode district numbers and INVENTED NHS organisations (ODS-shaped codes\n"
        '# Z.., names ending "(synthetic)"). Nothing here describes a real organisation\'s systems.\n'
    )
    body = yaml.safe_dump(registry, sort_keys=False, allow_unicode=True, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    return path


def home_areas(seed: int, households: np.ndarray, weights) -> np.ndarray:
    """Each household's home area (int16 index into ``weights``), drawn with those weights."""
    cum = _cumulative(weights)
    households = np.asarray(households)
    out = np.empty(households.shape[0], dtype=np.int16)
    for start in range(0, households.shape[0], CHUNK):
        u = uniform(seed, "england/home", households[start : start + CHUNK])
        out[start : start + CHUNK] = np.minimum(np.searchsorted(cum, u, side="right"), cum.size - 1)
    return out


def move_schedule(seed: int, households: np.ndarray, nights: int) -> MoveSchedule:
    """Every move of these households on nights 1..``nights`` (rates in the module docstring)."""
    households = np.asarray(households, dtype=np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    for start in range(0, households.shape[0], CHUNK):
        chunk = households[start : start + CHUNK]
        for k, pos, t in _move_times(seed, chunk, nights):
            keys = pair_keys(chunk[pos], k)
            kinds = (uniform(seed, "england/move/kind", keys) < CROSS_SHARE).astype(np.int8)
            nights_of = (np.floor(t) + 1).astype(np.int32)
            parts.append((chunk[pos], nights_of, kinds, np.full(pos.size, k, dtype=np.int16)))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return MoveSchedule(empty, empty.astype(np.int32), empty.astype(np.int8), empty.astype(np.int16))
    household, night, kind, number = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((number, household, night))
    return MoveSchedule(household[order], night[order], kind[order], number[order])


def area_after_moves(
    seed: int,
    households: np.ndarray,
    night: int,
    areas: Sequence[LocalAuthority] | None = None,
    home: np.ndarray | None = None,
) -> np.ndarray:
    """Each household's area (int16 index into ``areas``, England by default) at ``night``.

    ``home`` is the areas at night 0 (default :func:`home_areas` with ``areas``' child weights); every
    move of :func:`move_schedule` on a night up to ``night`` is applied in turn.
    """
    world = _world(tuple(england() if areas is None else areas))
    households = np.asarray(households, dtype=np.int64)
    if home is None:
        home = home_areas(seed, households, world.weights)
    out = np.asarray(home, dtype=np.int16).copy()
    for start in range(0, households.shape[0], CHUNK):
        chunk = households[start : start + CHUNK]
        current = out[start : start + CHUNK].astype(np.int64)
        for k, pos, _t in _move_times(seed, chunk, night):
            keys = pair_keys(chunk[pos], k)
            cross = uniform(seed, "england/move/kind", keys) < CROSS_SHARE
            moving = pos[cross]
            current[moving] = world.destinations(seed, current[moving], keys[cross])
        out[start : start + CHUNK] = current
    return out


def move_destinations(
    seed: int, current: np.ndarray, keys: np.ndarray, areas: Sequence[LocalAuthority] | None = None
) -> np.ndarray:
    """Where cross-authority moves from ``current`` (indices into ``areas``) go, each keyed on
    ``pair_keys(household, number)`` as :func:`move_schedule` numbers it: what
    :func:`area_after_moves` applies, for a caller that replays moves one at a time."""
    world = _world(tuple(england() if areas is None else areas))
    return world.destinations(seed, np.asarray(current, dtype=np.int64), np.asarray(keys))


def postcode_in_area(
    seed: int, keys: np.ndarray, area_index: np.ndarray, areas: Sequence[LocalAuthority] | None = None
) -> np.ndarray:
    """A postcode district (``<U4`` array) of the given area (index into ``areas``, England by
    default) for each address key, uniformly among the area's districts."""
    world = _world(tuple(england() if areas is None else areas))
    area_index = np.asarray(area_index, dtype=np.int64)
    pick = integers(seed, "england/postcode", keys, world.district_count[area_index])
    return world.district_table[world.district_offset[area_index] + pick]


def _organisation(code: str, name: str, sector: str, contract: str, areas: list[str]) -> dict:
    return {"code": code, "name": name, "sector": sector, "contract": contract, "areas": areas}


def _cumulative(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be a non-empty 1-d array of non-negative numbers with a positive sum")
    return np.cumsum(w) / w.sum()


def _move_times(seed: int, households: np.ndarray, horizon: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For k = 0, 1, ...: the positions of the households whose k-th move falls before ``horizon``
    (time in nights after night 0, continuous) and those times; a move at time t falls on night
    floor(t) + 1. Gaps are exponential, keyed on (household, k): the same for every horizon."""
    rate = MOVES_PER_YEAR / NIGHTS_PER_YEAR
    pos = np.arange(households.shape[0])
    t = np.zeros(households.shape[0])
    number = 0
    while pos.size and horizon > 0:
        u = uniform(seed, "england/move/gap", pair_keys(households[pos], number))
        t = t - np.log1p(-u) / rate
        keep = t < horizon
        pos, t = pos[keep], t[keep]
        if pos.size:
            yield number, pos, t
        number += 1


@lru_cache(maxsize=16)
def _world(areas: tuple[LocalAuthority, ...]) -> _World:
    return _World(areas)


class _World:
    """Per-world lookup tables (weights, neighbours, district table), built once per areas tuple."""

    def __init__(self, areas: tuple[LocalAuthority, ...]) -> None:
        self.weights = child_weights(areas)
        self.cumulative = np.cumsum(self.weights)
        near = neighbours(areas)
        self.near = np.maximum(near, 0)
        self.near_count = (near >= 0).sum(axis=1)
        counts = np.array([len(a.districts) for a in areas], dtype=np.int64)
        self.district_count = counts
        self.district_offset = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.district_table = np.array([d for a in areas for d in a.districts], dtype="<U4")

    def destinations(self, seed: int, current: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Where cross-authority moves from ``current`` go (rules in the module docstring)."""
        n = self.weights.size
        if n == 1:
            return current
        near = (uniform(seed, "england/move/near", keys) < NEIGHBOUR_SHARE) & (self.near_count[current] > 0)
        pick = uniform(seed, "england/move/pick", keys)
        out = current.copy()
        c = current[near]
        slot = np.minimum((pick[near] * self.near_count[c]).astype(np.int64), self.near_count[c] - 1)
        out[near] = self.near[c, slot]
        # Any other area, weighted: draw on the cumulative weights with the current area's slice removed.
        far = ~near
        c = current[far]
        w = self.weights[c]
        v = pick[far] * (1.0 - w)
        v = np.where(v >= self.cumulative[c] - w, v + w, v)
        chosen = np.minimum(np.searchsorted(self.cumulative, v, side="right"), n - 1)
        out[far] = np.where(chosen == c, (c + 1) % n, chosen)
        return out
