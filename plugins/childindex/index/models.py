"""SQLAlchemy 2 models of the index. Minimal by design.

``child`` holds only who the child is (the identity fields of the whitelist); ``involvement``
only which service is involved and how to reach it; ``source_record`` maps a pseudonymised
organisation's record to a child and is never shown to readers. Everything else is operational
bookkeeping that carries counts and hashes, never a child's data.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

KEY = String(64)  # hex HMAC-SHA256
REF_CHARS = 2 * (16 + 400)  # hex of a reference: 16-byte tag, a local id of up to 400 bytes


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Child(Base):
    __tablename__ = "child"

    child_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    # None when no record of the child has it: a contract may let a row with a blank identity
    # field in (its missing_identity option, 0011).
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))
    # None when the only postcode the agencies sent is on a sensitive involvement (or was blank).
    postcode: Mapped[str | None] = mapped_column(String(8))
    first_seen: Mapped[date] = mapped_column(Date)
    last_seen: Mapped[date] = mapped_column(Date, index=True)


CODE = String(16)  # an organisation's code in the registry (ODS, DfE LA number, GSS)
AREA = String(9)  # an authority area's ONS GSS code


class Organisation(Base):
    """Who is involved: the registry's organisations, as the index last saw them (kept while
    an involvement names one). Organisational data only: no child is in this table."""

    __tablename__ = "organisation"

    code: Mapped[str] = mapped_column(CODE, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[str] = mapped_column(String(16))


class Area(Base):
    """Upper-tier authority areas, by GSS code: where an involvement is."""

    __tablename__ = "area"

    code: Mapped[str] = mapped_column(AREA, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class SourceRecord(Base):
    """Pseudonymised organisation record -> child. Keys only; readers never see this table."""

    __tablename__ = "source_record"

    source_key: Mapped[str] = mapped_column(KEY, primary_key=True)
    organisation: Mapped[str] = mapped_column(CODE)
    child_id: Mapped[str] = mapped_column(ForeignKey("child.child_id"), index=True)
    # Not indexed: linkage compares pseudonyms in DuckDB, never by lookup here (0007).
    nhs_key: Mapped[str | None] = mapped_column(KEY)
    upn_key: Mapped[str | None] = mapped_column(KEY)
    match_key: Mapped[str | None] = mapped_column(KEY)  # None when a name or the date of birth was blank (0011)
    # The organisation's local id under the reference key (staging/reference.py): what a notice
    # names the child by in the organisation's own system. None for records staged before 0012.
    local_ref: Mapped[str | None] = mapped_column(String(REF_CHARS))
    first_seen: Mapped[date] = mapped_column(Date)
    last_seen: Mapped[date] = mapped_column(Date, index=True)
    # The record's identity fields as the organisation last sent them (standardised), which
    # linkage compares each night's new records against. The same fields as ``child``,
    # per organisation record; deleted with the record.
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))
    postcode: Mapped[str | None] = mapped_column(String(8))


class Involvement(Base):
    """Which service is involved with a child and how a practitioner reaches it."""

    __tablename__ = "involvement"

    source_key: Mapped[str] = mapped_column(
        ForeignKey("source_record.source_key", ondelete="CASCADE"), primary_key=True
    )
    # A copy of the source record's child_id (for the reader view), written with it; no key
    # of its own to child (0008): the record's is the one that holds.
    child_id: Mapped[str] = mapped_column(String(20), index=True)
    organisation: Mapped[str] = mapped_column(CODE)  # organisation.code (no key: readers join on it)
    sector: Mapped[str] = mapped_column(String(16))
    area: Mapped[str | None] = mapped_column(AREA)  # None only for rows from before the registry (0010)
    service: Mapped[str] = mapped_column(String(64))
    contact_route: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, index=True)
    last_seen: Mapped[date] = mapped_column(Date)


class ChildIdHistory(Base):
    """Merges and splits, so that anyone holding an old child id can follow it."""

    __tablename__ = "child_id_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    old_child_id: Mapped[str] = mapped_column(String(20), index=True)
    new_child_id: Mapped[str] = mapped_column(String(20))
    night: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(16))  # merge:linkage|merge:decision|split:changed|split:decision


class ReviewItem(Base):
    """A pair of records the model could not decide: for a person to look at."""

    __tablename__ = "review_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    night: Mapped[date] = mapped_column(Date, index=True)
    new_key: Mapped[str] = mapped_column(ForeignKey("source_record.source_key", ondelete="CASCADE"), index=True)
    other_key: Mapped[str] = mapped_column(ForeignKey("source_record.source_key", ondelete="CASCADE"), index=True)
    # None for a person's decision sent back unscored (0013)
    match_probability: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))  # a code of linkage.review.REASONS
    model_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | decided
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class LinkDecision(Base):
    """A person's decision about a pair of records; it wins over the model on every night."""

    __tablename__ = "link_decision"
    __table_args__ = (Index("ix_link_decision_pair", "key_a", "key_b", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # key_a < key_b, so a pair has one row whichever way round it was decided. No foreign
    # keys: a record re-sent by its organisation is replaced, and the decision must outlive that;
    # retention deletes a decision once either record has gone.
    key_a: Mapped[str] = mapped_column(KEY)
    key_b: Mapped[str] = mapped_column(KEY, index=True)
    decision: Mapped[str] = mapped_column(String(16))  # match | non_match
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime)


class FileLedger(Base):
    """Every file received: hash, outcome and counts. No row content."""

    __tablename__ = "file_ledger"
    __table_args__ = (Index("ix_file_ledger_organisation_sha256", "organisation", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation: Mapped[str] = mapped_column(CODE)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    night: Mapped[date] = mapped_column(Date, index=True)  # the night the file's name gives
    run_night: Mapped[date | None] = mapped_column(Date)  # the night of the run that took it (later: late)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)  # staged|linked|duplicate|quarantined
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    staged_path: Mapped[str | None] = mapped_column(Text)
    receipt_path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)  # intake's time over the file


class NightMetric(Base):
    __tablename__ = "night_metric"

    night: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class DeletionLog(Base):
    """One row per retention rule per run: counts only."""

    __tablename__ = "deletion_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_at: Mapped[datetime] = mapped_column(DateTime)
    run_for: Mapped[date] = mapped_column(Date, index=True)  # the run's logical date
    rule: Mapped[str] = mapped_column(String(64))
    cutoff: Mapped[date] = mapped_column(Date)
    rows_deleted: Mapped[int] = mapped_column(Integer)
    files_deleted: Mapped[int] = mapped_column(Integer)
    dry_run: Mapped[int] = mapped_column(Integer)


class KeyEpoch(Base):
    """The pseudonymisation key each epoch's keys were made with: an id, never the key."""

    __tablename__ = "key_epoch"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))  # pseudonymise.key_id of the key
    since: Mapped[date] = mapped_column(Date)


class NoticePending(Base):
    """Records that came tonight or whose child tonight's linkage changed: the notices stage
    looks at their children, then forgets them. Keys only."""

    __tablename__ = "notice_pending"

    source_key: Mapped[str] = mapped_column(KEY, primary_key=True)
    night: Mapped[date] = mapped_column(Date)


class NoticeTold(Base):
    """Which organisation's record was told of which other involvement on the same child: the
    memory that stops a second notice and lets a split be retracted. Keys and a night only.
    No foreign keys: a re-sent record is replaced, and what its organisation was told must
    outlive that; retention deletes a row once either record has gone."""

    __tablename__ = "notice_told"

    recipient_key: Mapped[str] = mapped_column(KEY, primary_key=True)  # the told organisation's record
    other_key: Mapped[str] = mapped_column(KEY, primary_key=True, index=True)  # the involvement it was told of
    night: Mapped[date] = mapped_column(Date)


class NoticeLedger(Base):
    """Notice files written: per night, organisation and kind, counts and the file's name;
    never a child or a reference."""

    __tablename__ = "notice_ledger"

    night: Mapped[date] = mapped_column(Date, primary_key=True)
    organisation: Mapped[str] = mapped_column(CODE, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # notice | retraction
    children: Mapped[int] = mapped_column(Integer)  # notices (one per child) of this kind
    involvements: Mapped[int] = mapped_column(Integer)  # involvements they announce or withdraw
    file_name: Mapped[str] = mapped_column(String(255))
