"""The file ledger: every file received, its hash, outcome and counts."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, case, insert, select, update

from childindex.index.db import engine_for
from childindex.index.models import FileLedger

LOADED = ("staged", "linked")
# The reason of a staged file some of whose records linkage held back (an oversize block):
# its other records are in the index, and only the held ones are read again.
HELD = "linkage_held"


class Ledger:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)

    def already_loaded(self, organisation: str, sha256: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(FileLedger.id)
                .where(
                    FileLedger.organisation == organisation, FileLedger.sha256 == sha256, FileLedger.status.in_(LOADED)
                )
                .limit(1)
            ).first()
        return row is not None

    def recent_row_counts(self, organisation: str, n: int) -> list[int]:
        """Rows read in the organisation's last ``n`` accepted files (for the row-count band)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FileLedger.rows_read)
                .where(FileLedger.organisation == organisation, FileLedger.status.in_(LOADED))
                .order_by(FileLedger.id.desc())
                .limit(n)
            ).all()
        return [r[0] for r in rows]

    def staged_paths(self, organisation: str) -> set[str]:
        """Every staging file the ledger names for the organisation (any status)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FileLedger.staged_path).where(
                    FileLedger.organisation == organisation, FileLedger.staged_path.is_not(None)
                )
            ).all()
        return {str(r[0]) for r in rows}

    def record(self, **values: object) -> None:
        values.setdefault("received_at", datetime.now(UTC).replace(tzinfo=None, microsecond=0))
        with self.engine.begin() as conn:
            conn.execute(insert(FileLedger).values(**values))

    def staged(self) -> list[tuple[int, str, str | None, date]]:
        """(id, organisation, staged_path, night) of files staged but not yet linked, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FileLedger.id, FileLedger.organisation, FileLedger.staged_path, FileLedger.night)
                .where(FileLedger.status == "staged")
                .order_by(FileLedger.night, FileLedger.id)
            ).all()
        return [(r.id, r.organisation, r.staged_path, r.night) for r in rows]

    def describe(self, ids: list[int]) -> dict[int, dict[str, str]]:
        """file_name, sha256 and night (ISO) of the files with these ids, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FileLedger.id, FileLedger.file_name, FileLedger.sha256, FileLedger.night).where(
                    FileLedger.id.in_(ids)
                )
            ).all()
        return {r.id: {"file_name": r.file_name, "sha256": r.sha256, "night": r.night.isoformat()} for r in rows}

    def partly_linked(self) -> set[int]:
        """Ids of staged files some of whose records linkage held back."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FileLedger.id).where(FileLedger.status == "staged", FileLedger.reason == HELD)
            ).all()
        return {r.id for r in rows}

    @staticmethod
    def mark_linked(conn: Connection, ids: list[int]) -> None:
        """Inside the publish transaction: the files' records are in the index."""
        if ids:
            reason = case((FileLedger.reason == HELD, None), else_=FileLedger.reason)
            conn.execute(update(FileLedger).where(FileLedger.id.in_(ids)).values(status="linked", reason=reason))

    @staticmethod
    def mark_held(conn: Connection, ids: list[int]) -> None:
        """Inside the publish transaction: the files stay staged, with records held back."""
        if ids:
            conn.execute(update(FileLedger).where(FileLedger.id.in_(ids)).values(reason=HELD))
