"""A small population followed for many years: births, ageing, services starting and ending.

The nightly generator (:mod:`.population`) models a few weeks of deltas over a large
population; its per-night floors (at least one birth, one leaver...) make no sense for a
few hundred children over twenty years. This model serves the retention time-travel
simulation instead: every child's whole life course is drawn once, as intervals in nights
after the first night, and a delivery for any period is the rows whose state changed in it.

Life course (every draw counter-based, keyed on the child, so a seed gives the same lives):
    births         the base population (aged 0-17 at the first night) plus births spread
                   evenly over the horizon at the rate that keeps the population steady
    health         97% of children, from birth (or before the first night) to their 19th
                   birthday (the end of school nursing); 15% leave the area earlier
    education      96% of children, from a few months after their 4th birthday to a date
                   between their 16th and 18th birthdays
    social care    10% of children, one episode of 3 months to 3 years before they are 18
    moves          each household moves about once a decade; every sector then working
                   with a child of the household re-sends the child's row
A row is sent when an involvement starts, when it ends (with its end date), and when the
child's household moves while it is open. The rows themselves (names, identifiers, noise,
local ids) come from :func:`.records.build_chunk`, exactly as in the nightly extracts.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from childindex.organisations.registry import Registry
from childindex.simulation.rand import integers, uniform
from childindex.simulation.synthetic.areas import World
from childindex.simulation.synthetic.extracts import TRUTH_SCHEMA, write_extract
from childindex.simulation.synthetic.noise import NoiseConfig
from childindex.simulation.synthetic.population import MAX_DOB_OFFSET, births, build_population, households
from childindex.whitelist import SECTORS

YEAR = 365.25
NEVER = np.iinfo(np.int32).max
HEALTH_RATE, HEALTH_EARLY_LEAVE = 0.97, 0.15
EDUCATION_RATE = 0.96
SOCIAL_CARE_RATE = 0.10
MOVES_PER_YEAR = 0.1  # per household


@dataclass(frozen=True)
class Interval:
    """Nights (after the first) an sector's involvement starts and ends; NEVER = not involved
    (start) or still open at the horizon (end). Negative: before the first night."""

    start: np.ndarray
    end: np.ndarray

    def open_at(self, night: int) -> np.ndarray:
        return (self.start <= night) & (self.end > night)


class Lifecourse:
    """Children's lives over ``years`` from ``first_night``; extracts for any period of it."""

    def __init__(
        self,
        children: int,
        years: int,
        *,
        registry: Registry,
        seed: int = 7,
        first_night: date = date(2026, 11, 24),
        noise: NoiseConfig | None = None,
    ) -> None:
        self.horizon = int(round(years * YEAR))
        self.first_night = first_night
        self.registry = registry
        n_births = int(round(children / 18 * years))
        total = children + n_births
        # The nightly model supplies identities (names, NHS numbers, UPNs, twins,
        # households, local ids, noise); the life course overrides when things happen. One
        # record per involvement: no duplicate registrations, which no delivery would ever end.
        noise = replace(
            noise or NoiseConfig(), duplicate_health=0.0, duplicate_education=0.0, duplicate_social_care=0.0
        )
        pop = build_population(total, seed=seed, first_night=first_night, noise=noise, world=World(registry))
        pop.bounds = np.full(self.horizon + 1, total, dtype=np.int64)  # one cohort
        p = np.arange(total, dtype=np.int64)
        birth_id, _ = births(pop, p)
        born_later = birth_id >= children
        # Births are spread evenly over the horizon, in person order (twins share a night).
        birth_night = 1 + (birth_id - children) * self.horizon // max(n_births, 1)
        before = -1 - integers(seed, "life/dob", birth_id, MAX_DOB_OFFSET)
        dob_night = np.where(born_later, birth_night, before)
        pop.dob = (pop.first_day + dob_night).astype(np.int32)
        pop.school_age[:] = True  # every child may get a UPN once at school
        self.pop, self.seed, self.total = pop, seed, total
        self.dob_night = dob_night.astype(np.int64)
        self.household = households(pop, p)[0]
        self.intervals = {
            "health": self._health(p),
            "education": self._education(p),
            "social_care": self._social_care(p),
        }
        for sector, iv in self.intervals.items():
            known = iv.start != NEVER
            # Local ids follow the order sectors first knew the child: stable for life.
            order = np.lexsort((p, iv.start))
            seq = np.full(total, -1, dtype=np.int32)
            seq[order[: int(known.sum())]] = np.arange(int(known.sum()), dtype=np.int32)
            pop.seq[sector] = seq
        self._moves()
        self.delivered = -1  # the last night delivered

    # -- life course draws ------------------------------------------------------------
    def _age_night(self, p: np.ndarray, years: float) -> np.ndarray:
        return self.dob_night[p] + int(round(years * YEAR))

    def _health(self, p: np.ndarray) -> Interval:
        s = self.seed
        known = uniform(s, "life/health", p) < HEALTH_RATE
        start, natural_end = self.dob_night[p], self._age_night(p, 19)
        early = uniform(s, "life/health_leave", p) < HEALTH_EARLY_LEAVE
        span = np.maximum(natural_end - start, 1)
        end = np.where(early, start + 1 + integers(s, "life/health_leave_at", p, span), natural_end)
        return self._interval(known, start, end)

    def _education(self, p: np.ndarray) -> Interval:
        s = self.seed
        known = uniform(s, "life/education", p) < EDUCATION_RATE
        start = self._age_night(p, 4) + integers(s, "life/edu_start", p, 300)
        end = self._age_night(p, 16) + integers(s, "life/edu_end", p, int(2 * YEAR))
        return self._interval(known, start, end)

    def _social_care(self, p: np.ndarray) -> Interval:
        s = self.seed
        known = uniform(s, "life/social_care", p) < SOCIAL_CARE_RATE
        start = self.dob_night[p] + integers(s, "life/sc_start", p, int(17 * YEAR))
        length = 90 + integers(s, "life/sc_length", p, int(3 * YEAR) - 90)
        end = np.minimum(start + length, self._age_night(p, 18))
        return self._interval(known, start, end)

    def _interval(self, known: np.ndarray, start: np.ndarray, end: np.ndarray) -> Interval:
        # Involvements over before the first night were never in any extract: not known.
        known = known & (end > 0) & (start <= self.horizon)
        end = np.where(end > self.horizon, NEVER, end)
        return Interval(np.where(known, start, NEVER), np.where(known, end, NEVER))

    def _moves(self) -> None:
        hh = np.unique(self.household)
        count = integers(self.seed, "life/moves", hh, int(2 * MOVES_PER_YEAR * self.horizon / YEAR) + 1)
        self.move_household = np.repeat(hh, count)
        slot = np.arange(len(self.move_household)) - np.repeat(np.cumsum(count) - count, count)
        self.move_night = 1 + integers(self.seed, "life/move_at", self.move_household * 64 + slot, self.horizon)

    # -- state at a night -------------------------------------------------------------
    def _state(self, night: int) -> None:
        """Set the population's arrays to their state at ``night``."""
        pop = self.pop
        pop.night = night
        for sector, iv in self.intervals.items():
            started = iv.start <= night
            pop.enrol[sector] = np.where(started, np.maximum(iv.start, 0), -1).astype(np.int16)
            pop.end[sector] = np.where(started & (iv.end <= night), iv.end, -1).astype(np.int16)
            pop.fixed[sector] = np.zeros(self.total, dtype=bool)
        moved = self.move_household[self.move_night <= night]
        per_household = np.bincount(moved, minlength=self.total)
        pop.addr_ver = per_household[self.household].astype(np.int16)

    def changed(self, sector: str, after: int, night: int) -> np.ndarray:
        """Person ids whose row ``sector`` sends for the period (after, night]."""
        iv = self.intervals[sector]
        if after < 0:  # the initial load: every open involvement
            return np.flatnonzero(iv.open_at(night))
        starts = (iv.start > after) & (iv.start <= night)
        ends = (iv.end > after) & (iv.end <= night) & (iv.start <= night)
        moving = np.unique(self.move_household[(self.move_night > after) & (self.move_night <= night)])
        moves = np.isin(self.household, moving) & (iv.start <= night) & (iv.end > after)
        return np.flatnonzero(starts | ends | moves)

    def open_involvements(self, night: int) -> int:
        """(sector, child) involvements open at ``night`` (the truth the index should hold)."""
        return int(sum(iv.open_at(night).sum() for iv in self.intervals.values()))

    def people_in_scope(self, night: int, grace: int) -> int:
        """Children with an involvement open at ``night`` or ended within ``grace`` nights."""
        alive = np.zeros(self.total, dtype=bool)
        for iv in self.intervals.values():
            alive |= (iv.start <= night) & (iv.end > night - grace)
        return int(alive.sum())

    def deliver(self, drop_root: Path, night: int) -> tuple[dict[str, int], pa.Table]:
        """Write every organisation's extract of the changes since the last delivery, named
        for ``first_night + night``; returns rows per organisation and the delivery's truth
        (organisation, local id, person id: kept in memory, never beside the extracts)."""
        from childindex.simulation.synthetic.generator import deliveries

        if night <= self.delivered:
            raise ValueError("deliveries go forward in time")
        self._state(night)
        when = self.first_night + timedelta(days=night)
        rows = {}
        with tempfile.TemporaryDirectory() as scratch:
            truth = Path(scratch) / "truth.parquet"
            with pq.ParquetWriter(truth, TRUTH_SCHEMA) as writer:
                for sector in SECTORS:
                    self.pop.sent[sector] = self.changed(sector, self.delivered, night)
                for code, contract, rec in deliveries(self.pop, self.delivered):
                    folder = self.registry.drop_folder(code, drop_root)
                    _, rows[code] = write_extract(self.pop, code, contract, rec, when, folder, writer)
            table = pq.read_table(truth)
        self.delivered = night
        return rows, table
