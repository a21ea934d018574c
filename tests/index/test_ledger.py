"""The file ledger on a migrated index: SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from childindex.index.db import engine_for
from childindex.index.ledger import LOADED, Ledger
from childindex.index.models import FileLedger
from tests.helpers import ORG

HEALTH, EDUCATION, SOCIAL_CARE = ORG["health"], ORG["education"], ORG["social_care"]

N1, N2, N3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def sha(n: int) -> str:
    return hashlib.sha256(f"file {n}".encode()).hexdigest()


def record(ledger: Ledger, n: int, status: str, organisation: str = HEALTH, night: date = N2, rows: int = 100) -> None:
    ledger.record(
        organisation=organisation,
        file_name=f"{organisation}_{night.isoformat()}_{n}.csv",
        sha256=sha(n),
        night=night,
        status=status,
        rows_read=rows,
        rows_accepted=rows,
        rows_rejected=0,
        staged_path=f"/staging/{organisation}/{n}.parquet" if status in LOADED else None,
    )


def statuses(url: str) -> dict[str, str]:
    with engine_for(url).connect() as conn:
        return dict(conn.execute(select(FileLedger.file_name, FileLedger.status)).all())


def test_already_loaded_only_for_staged_or_linked_files_of_that_organisation(url: str) -> None:
    ledger = Ledger(url)
    for n, status in enumerate(("staged", "linked", "quarantined", "duplicate"), start=1):
        record(ledger, n, status)
    assert LOADED == ("staged", "linked")
    assert [ledger.already_loaded(HEALTH, sha(n)) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert ledger.already_loaded(EDUCATION, sha(1)) is False
    assert ledger.already_loaded(HEALTH, sha(99)) is False
    # The same bytes from another organisation are that organisation's own file.
    record(ledger, 1, "staged", organisation=EDUCATION)
    assert ledger.already_loaded(EDUCATION, sha(1)) is True


def test_a_quarantined_file_sent_again_and_staged_is_then_loaded(url: str) -> None:
    ledger = Ledger(url)
    record(ledger, 1, "quarantined")
    assert not ledger.already_loaded(HEALTH, sha(1))
    record(ledger, 1, "staged")
    assert ledger.already_loaded(HEALTH, sha(1))


def test_record_stamps_the_time_received_unless_given(url: str) -> None:
    ledger = Ledger(url)
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    record(ledger, 1, "staged")
    after = datetime.now(UTC).replace(tzinfo=None)
    given = datetime(2026, 11, 25, 2, 0, 5)
    ledger.record(
        organisation=HEALTH, file_name="given.csv", sha256=sha(2), night=N2, status="linked", received_at=given
    )
    with engine_for(url).connect() as conn:
        rows = dict(conn.execute(select(FileLedger.file_name, FileLedger.received_at)).all())
    stamped = rows[f"{HEALTH}_2026-11-24_1.csv"]
    assert stamped.microsecond == 0 and stamped.tzinfo is None
    assert before <= stamped <= after  # UTC, naive, whole seconds
    assert rows["given.csv"] == given


def test_recent_row_counts_newest_first_limited_and_loaded_only(url: str) -> None:
    ledger = Ledger(url)
    record(ledger, 1, "linked", rows=1000)
    record(ledger, 2, "linked", rows=1010)
    record(ledger, 3, "quarantined", rows=5)
    record(ledger, 4, "staged", rows=1020)
    record(ledger, 5, "duplicate", rows=1020)
    record(ledger, 6, "staged", organisation=EDUCATION, rows=77)
    record(ledger, 7, "staged", rows=1030)
    assert ledger.recent_row_counts(HEALTH, 3) == [1030, 1020, 1010]
    assert ledger.recent_row_counts(HEALTH, 10) == [1030, 1020, 1010, 1000]
    assert ledger.recent_row_counts(EDUCATION, 10) == [77]
    assert ledger.recent_row_counts(SOCIAL_CARE, 10) == []
    assert ledger.recent_row_counts(HEALTH, 0) == []


def test_staged_lists_unlinked_files_oldest_night_first(url: str) -> None:
    ledger = Ledger(url)
    record(ledger, 1, "staged", night=N3)
    record(ledger, 2, "staged", organisation=EDUCATION, night=N1)
    record(ledger, 3, "linked", night=N1)
    record(ledger, 4, "quarantined", night=N1)
    record(ledger, 5, "staged", organisation=SOCIAL_CARE, night=N2)
    record(ledger, 6, "staged", night=N1)
    staged = ledger.staged()
    with engine_for(url).connect() as conn:
        ids = dict(conn.execute(select(FileLedger.sha256, FileLedger.id)).all())
    assert staged == [
        (ids[sha(2)], EDUCATION, f"/staging/{EDUCATION}/2.parquet", N1),
        (ids[sha(6)], HEALTH, f"/staging/{HEALTH}/6.parquet", N1),
        (ids[sha(5)], SOCIAL_CARE, f"/staging/{SOCIAL_CARE}/5.parquet", N2),
        (ids[sha(1)], HEALTH, f"/staging/{HEALTH}/1.parquet", N3),
    ]
    assert all(isinstance(row, tuple) and isinstance(row[3], date) for row in staged)


def test_mark_linked_inside_a_transaction(url: str) -> None:
    ledger = Ledger(url)
    for n in (1, 2, 3):
        record(ledger, n, "staged", night=N2)
    [first, second, third] = [row[0] for row in ledger.staged()]
    with engine_for(url).begin() as conn:
        Ledger.mark_linked(conn, [first, third])
        Ledger.mark_linked(conn, [])  # nothing to mark: no statement
    assert [row[0] for row in ledger.staged()] == [second]
    assert statuses(url) == {
        f"{HEALTH}_2026-11-24_1.csv": "linked",
        f"{HEALTH}_2026-11-24_2.csv": "staged",
        f"{HEALTH}_2026-11-24_3.csv": "linked",
    }
    assert ledger.already_loaded(HEALTH, sha(1))


def test_mark_linked_is_undone_with_its_transaction(url: str) -> None:
    ledger = Ledger(url)
    record(ledger, 1, "staged")
    [(file_id, *_)] = ledger.staged()
    with pytest.raises(RuntimeError, match="publish failed"), engine_for(url).begin() as conn:
        Ledger.mark_linked(conn, [file_id])
        assert conn.execute(text("SELECT status FROM file_ledger")).scalar_one() == "linked"
        raise RuntimeError("publish failed")
    assert ledger.staged() == [(file_id, HEALTH, f"/staging/{HEALTH}/1.parquet", N2)]
