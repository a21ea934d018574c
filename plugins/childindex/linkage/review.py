"""The clerical review queue: pairs the model could not decide, and people's decisions.

A decision is kept per pair of source records (``link_decision``) and wins over the model
on every later night: "same child" links the two records' children, "different children"
keeps them apart (and splits a child that holds both). Decisions take effect at the next
night's linkage.

Every reason an item can carry is explained once, in :data:`REASONS`: ``childindex review``
shows its plain words beside the code, and docs/linkage.md's table of reasons is tested
against it. Beside each pair the reviewer sees whether its NHS numbers and UPNs agree,
differ or are missing (what tells twins apart): compared in SQL from the records'
pseudonyms when the queue is read, so the comparison is always that of the records as the
index holds them now, and holds after key rotation (both pseudonyms are re-keyed together).
No identifier, pseudonymised or not, leaves the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from childindex.errors import UsageError
from childindex.index.db import engine_for
from childindex.index.models import LinkDecision, ReviewItem, SourceRecord

DECISIONS = ("match", "non_match")
SHOWN = ("organisation", "given_name", "family_name", "date_of_birth", "sex", "postcode")
# How a pair's identifiers compare (the words the reviewer reads).
AGREE, DIFFER, MISSING_ONE, MISSING_BOTH = "agree", "differ", "missing on one", "missing on both"


@dataclass(frozen=True)
class Reason:
    """Why a pair waits for a person: ``label`` is a few words shown beside the code by
    ``childindex review``; ``meaning`` and ``check`` are docs/linkage.md's table of reasons
    (what it means, what the reviewer should check)."""

    code: str
    label: str
    meaning: str
    check: str


REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        Reason(
            "probability_between_thresholds",
            "the model is unsure",
            "The match probability is at least the review threshold but below the match"
            " threshold: the records agree on some fields and not on others. Never given at"
            " or above the match threshold.",
            "Which fields differ, and whether a typo, a nickname, a move or a new surname"
            " explains them. Identifiers that agree make one child very likely; an"
            " identifier that differs never reaches the queue by this reason.",
        ),
        Reason(
            "given_names_resemble",
            "given names only resemble each other, no shared identifier",
            'The given names are alike but not the same ("Ella" and "Ellie") and the'
            " records share no NHS number or UPN, however sure the model is. It may be one"
            " child with a typo or a nickname, or twins, who share a birthday, a surname and"
            " an address.",
            "Whether the NHS numbers and UPNs are missing on one record or on both (twins"
            " have different ones), whether the family has twins, and which spelling each"
            " organisation uses elsewhere.",
        ),
        Reason(
            "conflicting_group",
            "a chain of links would join two NHS numbers or UPNs",
            "The model linked this pair, often with a probability near 1, but together with"
            " other links it would have made one child holding two different NHS numbers or"
            " two different UPNs (A like B, B like C, A and C different children). Every"
            " model link in that group was undone.",
            "The other open items on these two records (shown with the item): decide which"
            " pairs are the same child. A pair whose identifiers agree is the same child; a"
            " record without identifiers can only belong to one of two children.",
        ),
        Reason(
            "conflicting_decision",
            "a chain of links would join records a person kept apart",
            "The model linked this pair, often with a probability near 1, but the group its"
            " links would form holds two records a person said are different children."
            " Every model link in that group was undone.",
            'The other open items on these two records, and the earlier "different'
            ' children" decision in the group: is this pair the same child, and which of'
            " the two children does it belong with?",
        ),
        Reason(
            "decided_match_conflicts",
            'a person\'s "same child" conflicts',
            "A person said this pair is the same child, but with the other decisions and"
            " links that would put two different NHS numbers or UPNs, or two records a"
            " person said are different children, in one child: people's decisions"
            " contradict each other or the identifiers. The decision is not applied.",
            'The identifiers beside the pair ("differ" means two children, however alike'
            " the rest) and the other open items on these records. Decide again: the new"
            " decision replaces the old one, and decisions that agree apply from the next"
            " night.",
        ),
    )
}


def reason_of(code: str) -> Reason:
    """The reason with that code (one this version does not give: the code alone)."""
    return REASONS.get(code) or Reason(code, "not explained by this version", "", "")


class Listed(NamedTuple):
    """An open item as ``childindex review --list`` shows it: no personal data. The
    probability is None for a person's decision sent back without a model score (neither
    record came that night, or the pair scored below the review threshold)."""

    id: int
    night: date
    match_probability: float | None
    reason: str
    nhs_number: str  # agree | differ | missing on one | missing on both
    upn: str


@dataclass(frozen=True)
class Item:
    id: int
    night: date
    match_probability: float | None
    reason: str
    model_version: int
    new: dict  # the minimal fields of tonight's record
    other: dict  # and of the record it may be the same child as
    nhs_number: str  # how the two records' NHS numbers compare: agree | differ | missing on ...
    upn: str  # and their UPNs
    related: list[int]  # the other open items on either record (a conflict is decided together)


def open_count(url: str) -> int:
    with engine_for(url).connect() as conn:
        return conn.execute(select(func.count()).where(ReviewItem.status == "open")).scalar_one()


def open_items(url: str, limit: int = 50) -> list[Listed]:
    """The oldest open items, with how their identifiers compare: no personal data."""
    r = ReviewItem
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            _with_identifiers(select(r.id, r.night, r.match_probability, r.reason))
            .where(r.status == "open")
            .order_by(r.night, r.id)
            .limit(limit)
        ).all()
    return [Listed(*row) for row in rows]


def item(url: str, item_id: int | None = None) -> Item | None:
    """One open item with both records' fields (the next one when ``item_id`` is None)."""
    r = ReviewItem
    with engine_for(url).connect() as conn:
        stmt = _with_identifiers(select(r)).where(r.status == "open")
        stmt = stmt.where(r.id == item_id) if item_id is not None else stmt.order_by(r.night, r.id).limit(1)
        row = conn.execute(stmt).first()
        if row is None:
            return None
        keys = [row.new_key, row.other_key]
        fields = [getattr(SourceRecord, f) for f in SHOWN]
        records = {
            rec.source_key: dict(zip(SHOWN, rec[1:], strict=True))
            for rec in conn.execute(select(SourceRecord.source_key, *fields).where(SourceRecord.source_key.in_(keys)))
        }
        related = (
            conn.execute(
                select(r.id)
                .where(r.status == "open", r.id != row.id, or_(r.new_key.in_(keys), r.other_key.in_(keys)))
                .order_by(r.id)
            )
            .scalars()
            .all()
        )
    return Item(
        row.id, row.night, row.match_probability, row.reason, row.model_version,
        records[row.new_key], records[row.other_key], row.nhs_number, row.upn, list(related),
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


def open_pairs(url: str) -> Any:
    """The pairs of the open items, as an Arrow table (new_key, other_key): a night does
    not queue again a pair that is waiting already."""
    from childindex.index.store import arrow_schema, read_arrow

    r = ReviewItem
    schema = arrow_schema(ReviewItem, ["new_key", "other_key"])
    [pairs] = read_arrow(url, [(select(r.new_key, r.other_key).where(r.status == "open"), schema)])
    return pairs


def _with_identifiers(stmt: Any) -> Any:
    """``stmt`` over review_item, with columns ``nhs_number`` and ``upn``: how the pair's
    pseudonymised identifiers compare, computed in the database."""
    new, other = aliased(SourceRecord), aliased(SourceRecord)
    return (
        stmt.add_columns(
            _agreement(new.nhs_key, other.nhs_key).label("nhs_number"),
            _agreement(new.upn_key, other.upn_key).label("upn"),
        )
        .join(new, new.source_key == ReviewItem.new_key)
        .join(other, other.source_key == ReviewItem.other_key)
    )


def _agreement(a: Any, b: Any) -> Any:
    return case(
        (and_(a.is_(None), b.is_(None)), MISSING_BOTH),
        (or_(a.is_(None), b.is_(None)), MISSING_ONE),
        (a == b, AGREE),
        else_=DIFFER,
    )
