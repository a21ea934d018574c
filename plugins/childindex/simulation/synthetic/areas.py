"""Where synthetic children live, where they move, and which organisation holds each record.

:class:`World` is the organisations registry seen from the generator: its authority areas
(with child-population weights and neighbours from :mod:`childindex.simulation.england`,
and the registry's own postcode districts), and for each sector the organisations serving
each area. A household lives in one area; a child's record in a sector is held by the
sector's organisation serving the area (several serving one area, as when a large county
has two NHS providers, share its households by a draw keyed on the household).

:class:`Moves` replays every household's house moves (timing, kind and destination from
:func:`childindex.simulation.england.move_schedule` and ``move_destinations``) from
``HISTORY_NIGHTS`` before the first night up to the population's night, so the initial
load already holds children who moved across an authority boundary in the last two years:
the old area's organisations still hold their (closed) records. A move is *cross-authority*
when it changes the household's area. Each cross-authority move while a child is involved
with a sector ends the record held in the old area and starts a new one in the new area:
the record's *registration* number (0 for the first) counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from childindex.organisations.registry import Organisation, Registry
from childindex.simulation.england import CROSS, LocalAuthority, england, move_destinations, move_schedule
from childindex.simulation.england import home_areas as draw_home_areas
from childindex.simulation.rand import integers, pair_keys
from childindex.whitelist import SECTORS

HISTORY_NIGHTS = 730  # two years of moves before the first night (the initial load's history)
_SPAN = np.int64(1 << 24)  # night offset width in the (household, night) search keys


@dataclass(frozen=True)
class World:
    """The registry's areas and organisations, as the generator uses them."""

    registry: Registry

    @cached_property
    def areas(self) -> tuple[LocalAuthority, ...]:
        """The registry's areas as England's (weights, region, neighbours), with the registry's
        postcode districts; an area England's table lacks gets the median weight."""
        known = {a.code: a for a in england()}
        median = int(np.median([a.children for a in known.values()]))
        out = []
        for i, area in enumerate(self.registry.areas):
            base = known.get(area.code)
            districts = area.postcode_districts or (base.districts if base else ())
            out.append(
                LocalAuthority(
                    index=base.index if base else -1 - i,
                    code=area.code,
                    name=area.name,
                    la_number=area.la_number or (base.la_number if base else 0),
                    region=base.region if base else "unknown",
                    children=base.children if base else median,
                    postcode_areas=base.postcode_areas if base else (),
                    districts=tuple(districts),
                )
            )
        return tuple(out)

    @cached_property
    def organisations(self) -> tuple[Organisation, ...]:
        return self.registry.organisations

    @cached_property
    def serving(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """sector -> (offsets, organisation indices): the organisations serving each area."""
        index = {a.code: i for i, a in enumerate(self.registry.areas)}
        out = {}
        for sector in SECTORS:
            lists: list[list[int]] = [[] for _ in self.registry.areas]
            for i, org in enumerate(self.organisations):
                if org.sector == sector:
                    for code in org.areas:
                        lists[index[code]].append(i)
            counts = np.array([len(x) for x in lists], dtype=np.int64)
            offsets = np.concatenate(([0], np.cumsum(counts)))
            flat = np.array([i for x in lists for i in x], dtype=np.int64)
            out[sector] = (offsets, flat)
        return out

    def holder(self, seed: int, sector: str, household: np.ndarray, area: np.ndarray) -> np.ndarray:
        """Index into ``organisations`` of the organisation holding each record (-1: no
        organisation of the sector serves the area)."""
        offsets, flat = self.serving[sector]
        area = np.asarray(area, dtype=np.int64)
        count = offsets[area + 1] - offsets[area]
        pick = integers(seed, f"holder/{sector}", np.asarray(household, dtype=np.int64), np.maximum(count, 1))
        return np.where(count > 0, flat[np.minimum(offsets[area] + pick, max(len(flat) - 1, 0))], -1)

    def home_areas(self, seed: int, households: np.ndarray) -> np.ndarray:
        weights = np.array([a.children for a in self.areas], dtype=np.float64)
        return draw_home_areas(seed, households, weights).astype(np.int64)


@dataclass
class Moves:
    """Every house move of every household, from ``-HISTORY_NIGHTS`` to the population's night.

    Nights are relative to the first night (0): a move on night ``m`` is in effect from it.
    ``all_keys`` / ``cross_keys`` are sorted ``household * SPAN + (night + HISTORY_NIGHTS)``
    keys, so "how many moves of household h by night n" is two binary searches.
    """

    seed: int
    world: World | None  # None: one place, every move stays in it
    all_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cross_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cross_area: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # area after each cross move

    @classmethod
    def build(cls, seed: int, households: np.ndarray, night: int, world: World | None) -> Moves:
        """Replay the moves of ``households`` (unique ids) up to ``night``."""
        moves = cls(seed, world)
        schedule = move_schedule(seed, households, HISTORY_NIGHTS + night)
        order = np.lexsort((schedule.number, schedule.household))  # by household, then its k-th move
        hh = schedule.household[order]
        nights = schedule.night[order].astype(np.int64) - HISTORY_NIGHTS
        kind, number = schedule.kind[order], schedule.number[order].astype(np.int64)
        moves.all_keys = hh * _SPAN + (nights + HISTORY_NIGHTS)
        if world is None or len(world.areas) < 2 or len(hh) == 0:
            return moves
        # Replay the cross moves in order of their number: the k-th starts where the (k-1)-th ended.
        area = np.zeros(len(hh), dtype=np.int64)
        home_of = world.home_areas(seed, hh)  # a draw keyed on the household: the same on each of its rows
        for k in range(int(number.max()) + 1):
            rows = np.flatnonzero(number == k)
            before = np.where(k == 0, home_of[rows], area[np.maximum(rows - 1, 0)])
            cross = kind[rows] == CROSS
            after = before.copy()
            after[cross] = move_destinations(seed, before[cross], pair_keys(hh[rows[cross]], k), world.areas)
            area[rows] = after
        previous = np.where(number == 0, home_of, area[np.maximum(np.arange(len(hh)) - 1, 0)])
        crossed = area != previous
        moves.cross_keys = moves.all_keys[crossed]
        moves.cross_area = area[crossed]
        return moves

    # -- queries, vectorised over (household, night) ---------------------------------------
    @staticmethod
    def _count(keys: np.ndarray, households: np.ndarray, nights: np.ndarray) -> np.ndarray:
        """Entries of ``keys`` for each household with night <= the given night."""
        hh = np.asarray(households, dtype=np.int64)
        upto = hh * _SPAN + (np.asarray(nights, dtype=np.int64) + HISTORY_NIGHTS)
        return np.searchsorted(keys, upto, side="right") - np.searchsorted(keys, hh * _SPAN, side="left")

    def moves_by(self, households: np.ndarray, nights) -> np.ndarray:
        """House moves (of any kind) of each household by ``nights``: its address version."""
        return self._count(self.all_keys, households, np.broadcast_to(nights, np.shape(households)))

    def crossings_by(self, households: np.ndarray, nights) -> np.ndarray:
        """Cross-authority moves of each household by ``nights``."""
        return self._count(self.cross_keys, households, np.broadcast_to(nights, np.shape(households)))

    def cross_night(self, households: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The night of each household's k-th cross-authority move (k from 1; must exist)."""
        households = np.asarray(households, dtype=np.int64)
        if len(self.cross_keys) == 0:
            return np.zeros(len(households), dtype=np.int64)
        first = np.searchsorted(self.cross_keys, households * _SPAN, side="left")
        at = np.clip(first + np.asarray(k, dtype=np.int64) - 1, 0, len(self.cross_keys) - 1)
        return self.cross_keys[at] % _SPAN - HISTORY_NIGHTS

    def area_after(self, households: np.ndarray, k: np.ndarray, home: np.ndarray) -> np.ndarray:
        """Each household's area after its k-th cross-authority move (``home`` for k = 0)."""
        k = np.asarray(k, dtype=np.int64)
        if len(self.cross_keys) == 0:
            return np.asarray(home, dtype=np.int64)
        first = np.searchsorted(self.cross_keys, np.asarray(households, dtype=np.int64) * _SPAN, side="left")
        at = np.minimum(first + k - 1, len(self.cross_area) - 1)
        return np.where(k > 0, self.cross_area[np.maximum(at, 0)], home)
