"""The clerical review queue: pairs the model could not decide, and people's decisions.

A decision is kept per pair of source records (``link_decision``) and wins over the model
on every later night: "same child" links the two records' children, "different children"
keeps them apart (and splits a child that holds both). Decisions take effect at the next
night's linkage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import delete, func, insert, select, update

from childindex.errors import UsageError
from childindex.index.db import engine_for
from childindex.index.models import LinkDecision, ReviewItem, SourceRecord

DECISIONS = ("match", "non_match")
SHOWN = ("organisation", "given_name", "family_name", "date_of_birth", "sex", "postcode")


@dataclass(frozen=True)
class Item:
    id: int
    night: date
    match_probability: float
    reason: str
    model_version: int
    new: dict  # the minimal fields of tonight's record
    other: dict  # and of the record it may be the same child as


def open_count(url: str) -> int:
    with engine_for(url).connect() as conn:
        return conn.execute(select(func.count()).where(ReviewItem.status == "open")).scalar_one()


def open_items(url: str, limit: int = 50) -> list[tuple[int, date, float, str]]:
    """(id, night, probability, reason) of the oldest open items: no personal data."""
    r = ReviewItem
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(r.id, r.night, r.match_probability, r.reason)
            .where(r.status == "open")
            .order_by(r.night, r.id)
            .limit(limit)
        ).all()
    return [(row.id, row.night, row.match_probability, row.reason) for row in rows]


def item(url: str, item_id: int | None = None) -> Item | None:
    """One open item with both records' fields (the next one when ``item_id`` is None)."""
    r = ReviewItem
    with engine_for(url).connect() as conn:
        stmt = select(r).where(r.status == "open")
        stmt = stmt.where(r.id == item_id) if item_id is not None else stmt.order_by(r.night, r.id).limit(1)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        fields = [getattr(SourceRecord, f) for f in SHOWN]
        records = {
            rec.source_key: dict(zip(SHOWN, rec[1:], strict=True))
            for rec in conn.execute(
                select(SourceRecord.source_key, *fields).where(
                    SourceRecord.source_key.in_([row.new_key, row.other_key])
                )
            )
        }
    return Item(
        row.id, row.night, row.match_probability, row.reason, row.model_version,
        records[row.new_key], records[row.other_key],
    )  # fmt: skip


def decide(url: str, item_id: int, decision: str, reviewer: str, at: datetime | None = None) -> None:
    """Record a decision on an open item's pair (replacing any earlier one on that pair),
    made ``at`` (now by default; a simulated clock passes its own)."""
    if decision not in DECISIONS:
        raise UsageError(f"decision must be one of {', '.join(DECISIONS)}")
    r = ReviewItem
    now = at or datetime.now(UTC).replace(tzinfo=None)
    with engine_for(url).begin() as conn:
        row = conn.execute(select(r.new_key, r.other_key).where(r.id == item_id, r.status == "open")).first()
        if row is None:
            raise UsageError(f"no open review item {item_id}")
        key_a, key_b = sorted((row.new_key, row.other_key))
        d = LinkDecision
        conn.execute(delete(d).where(d.key_a == key_a, d.key_b == key_b))
        conn.execute(
            insert(d).values(key_a=key_a, key_b=key_b, decision=decision, decided_by=reviewer[:64], decided_at=now)
        )
        # Every open item on the same pair is answered by this decision.
        conn.execute(
            update(r)
            .where(
                r.status == "open",
                ((r.new_key == key_a) & (r.other_key == key_b)) | ((r.new_key == key_b) & (r.other_key == key_a)),
            )
            .values(status="decided", resolved_at=now)
        )
