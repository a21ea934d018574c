"""The geography of a synthetic England: authority areas, postcode districts and NHS providers.

ALL OF IT IS FOR SIMULATION. The areas are England's 153 real upper-tier authorities with children's
services (``areas.csv``: GSS code, name, DfE LA number, region and an APPROXIMATE child population aged
0-17, estimates of the ONS mid-2021 figures; the file's header says where each column comes from). What is
built on them is invented, deterministically:

Postcode districts
    Each area gets ``max(3, round(children / 5,000))`` districts (England has about 2,300 districts for
    12 million children, about 5,000 children each), so 2,400-odd in all. District ``j`` of an area takes
    the area's ``j % len(postcode_areas)``-th real postcode area (``NE``, ``DH``, ``TS``, ...) and the next
    free number of that postcode area, counting from 1 across the areas in file order; past 99 a number is
    a digit and a letter (``B1A``). Districts are therefore unique across areas and well-formed outward
    codes, but the numbers are not the real ones: ``DH4`` here need not be the real ``DH4``.

NHS providers (community child health)
    Within each region, in file order (rows that follow each other are neighbours): an area of at least
    ``2 * PROVIDER_CHILDREN`` children has ``children // PROVIDER_CHILDREN`` providers of its own (part
    ``i`` of ``k`` serving the area's districts ``j`` with ``j % k == i - 1``); smaller areas are grouped
    with the areas that follow them until a group has ``PROVIDER_CHILDREN`` children or
    ``MAX_PROVIDER_AREAS`` areas. A provider's code is an ODS-shaped three-character code ``Z`` + two
    base-36 digits of its position in England's list (NHS trust codes begin ``R`` or ``T``, so none of
    these is a real trust's), its name ends "(synthetic)", and providers in even positions send the
    ``health_chis`` contract, odd ones ``health_epr``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from childindex.organisations.registry import GSS_UPPER_TIER, LA_NUMBER, ODS_CODE, OUTWARD_CODE

AREAS_FILE = Path(__file__).with_name("areas.csv")
REGIONS = (
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
)
CHILDREN_PER_DISTRICT = 5_000
MIN_DISTRICTS = 3
PROVIDER_CHILDREN = 60_000  # about 150 providers for England's 12 million children
MAX_PROVIDER_AREAS = 4
ODS_PREFIX = "Z"
HEALTH_CONTRACTS = ("health_chis", "health_epr")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class LocalAuthority:
    """One upper-tier authority area; ``index`` is its row in England's list (``areas.csv``)."""

    index: int
    code: str
    name: str
    la_number: int
    region: str
    children: int
    postcode_areas: tuple[str, ...]
    districts: tuple[str, ...]


@dataclass(frozen=True)
class NhsProvider:
    """A synthetic NHS community child health provider; ``index`` is its position in England's list.

    ``part`` is ``(i, k)`` when it is the i-th of k providers of one large area, else None;
    ``districts`` are the postcode districts whose children it serves.
    """

    index: int
    code: str
    name: str
    contract: str
    areas: tuple[str, ...]
    part: tuple[int, int] | None
    districts: tuple[str, ...]


@cache
def england() -> tuple[LocalAuthority, ...]:
    """Every area, in file order (by region, neighbours next to each other)."""
    rows = _read_rows(AREAS_FILE)
    counters: dict[str, int] = {}
    areas = []
    for i, row in enumerate(rows):
        prefixes = tuple(row["postcode_areas"].split())
        children = int(row["children"])
        wanted = max(MIN_DISTRICTS, round(children / CHILDREN_PER_DISTRICT))
        districts = []
        for j in range(wanted):
            prefix = prefixes[j % len(prefixes)]
            counters[prefix] = counters.get(prefix, 0) + 1
            districts.append(prefix + _district_number(counters[prefix]))
        areas.append(
            LocalAuthority(
                index=i,
                code=row["gss_code"],
                name=row["name"],
                la_number=int(row["la_number"]),
                region=row["region"],
                children=children,
                postcode_areas=prefixes,
                districts=tuple(districts),
            )
        )
    _check(areas)
    return tuple(areas)


def select_areas(region: str | None = None, areas: int | None = None) -> tuple[LocalAuthority, ...]:
    """England's areas, or one region's, optionally only the first ``areas`` of them (file order)."""
    chosen = england()
    if region is not None:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; known: {', '.join(REGIONS)}")
        chosen = tuple(a for a in chosen if a.region == region)
    if areas is not None:
        if areas < 1:
            raise ValueError(f"areas must be at least 1, not {areas}")
        chosen = chosen[:areas]
    return chosen


def child_weights(areas: Sequence[LocalAuthority] | None = None) -> np.ndarray:
    """Each area's share of the children (float64, sums to 1), in the order given."""
    chosen = england() if areas is None else areas
    w = np.array([a.children for a in chosen], dtype=np.float64)
    return w / w.sum()


def neighbours(areas: Sequence[LocalAuthority] | None = None) -> np.ndarray:
    """An (n, 2) int array of each area's neighbours among ``areas`` (positions in it), -1 for none.

    Neighbours are the areas just before and after in the given order within the same region, the
    valid ones first: file order walks each region from neighbour to neighbour.
    """
    chosen = tuple(england() if areas is None else areas)
    out = np.full((len(chosen), 2), -1, dtype=np.int64)
    for i, a in enumerate(chosen):
        near = [j for j in (i - 1, i + 1) if 0 <= j < len(chosen) and chosen[j].region == a.region]
        out[i, : len(near)] = near
    return out


@cache
def nhs_providers() -> tuple[NhsProvider, ...]:
    """England's synthetic NHS community child health providers (rules in the module docstring)."""
    plans: list[tuple[tuple[LocalAuthority, ...], tuple[int, int] | None]] = []
    for region in REGIONS:
        group: list[LocalAuthority] = []
        for area in (a for a in england() if a.region == region):
            if area.children >= 2 * PROVIDER_CHILDREN:
                if group:
                    plans.append((tuple(group), None))
                    group = []
                k = area.children // PROVIDER_CHILDREN
                plans.extend(((area,), (i, k)) for i in range(1, k + 1))
                continue
            group.append(area)
            if sum(a.children for a in group) >= PROVIDER_CHILDREN or len(group) == MAX_PROVIDER_AREAS:
                plans.append((tuple(group), None))
                group = []
        if group:
            plans.append((tuple(group), None))
    providers = []
    for index, (served, part) in enumerate(plans):
        label = _join_names([a.name for a in served]) + " community health services"
        if part is None:
            districts = tuple(d for a in served for d in a.districts)
        else:
            label += f", part {part[0]} of {part[1]}"
            districts = served[0].districts[part[0] - 1 :: part[1]]
        code = ODS_PREFIX + _BASE36[index // 36] + _BASE36[index % 36]
        providers.append(
            NhsProvider(
                index=index,
                code=code,
                name=f"{label} (synthetic)",
                contract=HEALTH_CONTRACTS[index % 2],
                areas=tuple(a.code for a in served),
                part=part,
                districts=districts,
            )
        )
    if any(not ODS_CODE.match(p.code) for p in providers):
        raise ValueError("an NHS provider code is not ODS-shaped")
    return tuple(providers)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _district_number(n: int) -> str:
    """1..99 as digits, then a digit and a letter (1A..9Z): what an outward code allows."""
    if n <= 99:
        return str(n)
    n -= 100
    if n >= 9 * 26:
        raise ValueError("a postcode area ran out of district numbers")
    return str(1 + n // 26) + chr(ord("A") + n % 26)


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _check(areas: list[LocalAuthority]) -> None:
    """The data file's invariants: code formats, regions, uniqueness (a broken edit fails at load)."""
    problems = []
    for a in areas:
        if not GSS_UPPER_TIER.match(a.code):
            problems.append(f"{a.name}: GSS code {a.code}")
        if not LA_NUMBER.match(f"{a.la_number:03d}"):
            problems.append(f"{a.name}: LA number {a.la_number}")
        if a.region not in REGIONS:
            problems.append(f"{a.name}: region {a.region}")
        if a.children <= 0:
            problems.append(f"{a.name}: children {a.children}")
        problems.extend(f"{a.name}: district {d}" for d in a.districts if not OUTWARD_CODE.match(d))
    for field in ("code", "name", "la_number"):
        values = [getattr(a, field) for a in areas]
        if len(set(values)) != len(values):
            problems.append(f"duplicate {field}")
    districts = [d for a in areas for d in a.districts]
    if len(set(districts)) != len(districts):
        problems.append("duplicate postcode district")
    if problems:
        raise ValueError(f"{AREAS_FILE.name}: " + "; ".join(problems))
