"""Children who moved across an authority boundary: the old area's record ends on the move,
the new area's organisation registers the child anew (the initial load holds two years of
such moves), and ground truth marks them."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.compute as pc
import yaml

from childindex.organisations.registry import parse_registry
from childindex.simulation.england import england_registry
from childindex.simulation.synthetic.areas import HISTORY_NIGHTS, World
from childindex.simulation.synthetic.population import build_population
from childindex.simulation.synthetic.records import NOT_CLOSED, build_chunk, records_since

FIRST = date(2026, 11, 24)


def _population(children: int = 20_000, night: int = 0):
    registry = parse_registry(yaml.safe_dump(england_registry(region="North East")), "north-east")
    world = World(registry)
    return build_population(children, seed=5, first_night=FIRST, night_number=night, world=world), world


def test_the_initial_load_holds_the_records_earlier_moves_closed() -> None:
    pop, world = _population()
    rec = records_since(pop, "health", -(10**6))
    closed = rec.closed_at != NOT_CLOSED
    assert 0.02 < closed.mean() < 0.15, "about 4% of children cross a boundary a year, two years of history"
    assert ((rec.closed_at[closed] > -HISTORY_NIGHTS) & (rec.closed_at[closed] <= 0)).all()
    # Each closed record is in another area than the same child's next registration.
    old = rec.take(np.flatnonzero(closed))
    current = {(p, r): a for p, r, a in zip(rec.p[~closed], rec.registration[~closed], rec.area[~closed], strict=True)}
    later = [current.get((p, r + 1)) for p, r in zip(old.p, old.registration, strict=True)]
    moved = [a != b for a, b in zip(old.area, later, strict=True) if b is not None]
    assert moved and all(moved)
    # Written out, a closed record carries its end date; the new one starts after it.
    org = next(o for o in world.organisations if o.sector == "health" and o.contract == "health_chis")
    chunk = build_chunk(pop, org.code, org.contract, old.take(np.arange(min(200, len(old.p)))))
    assert pc.all(pc.is_valid(chunk.columns["CaseloadEnd"])).as_py()


def test_a_nights_crossings_close_the_old_record_and_open_a_new_one() -> None:
    pop, _ = _population(night=30)
    rec = records_since(pop, "education", 29)  # night 30's delta
    closed = rec.closed_at != NOT_CLOSED
    assert closed.any(), "a month's deltas of 20,000 children hold crossings"
    assert (rec.closed_at[closed] == 30).all()
    # Every child whose record closed tonight also has tonight's new registration, elsewhere.
    new = {(p, r): a for p, r, a in zip(rec.p[~closed], rec.registration[~closed], rec.area[~closed], strict=True)}
    for p, r, a in zip(rec.p[closed], rec.registration[closed], rec.area[closed], strict=True):
        assert (p, r + 1) in new and new[(p, r + 1)] != a
