"""End to end: a file with blank identity fields, through intake into staging.

The shipped contracts say ``missing_identity: stage``: a row with a blank identity field is
staged with the field empty (NULL) when it carries a valid NHS number or UPN, or lacks at
most one of the names and date of birth; the receipt counts such rows by column. Values
never reach the receipt, the ledger or the logs.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import duckdb
import pytest

from childindex.intake import run_intake
from childindex.receipts import ADVICE, INCOMPLETE_ADVICE
from tests.helpers import ORG, child, drop, render

NIGHT = date(2026, 11, 24)
CANARY = "Qzblankcanary"


def blank_identity_rows() -> list[dict[str, object]]:
    """Rows 2, 3, 4 and 6 are staged with blanks; row 5 has too little to be matched."""
    return [
        child(1, family_name=CANARY + "a"),
        child(2, given_name=None, family_name=CANARY + "b"),  # NHS number: staged
        child(3, date_of_birth=None, nhs_number=None, family_name=CANARY + "c"),  # one of three: staged
        child(4, sex=None, postcode=None, nhs_number=None, given_name=CANARY + "d"),  # staged
        child(5, given_name=None, family_name=None, nhs_number=None, postcode="DH1 1AA"),  # rejected
        child(6, given_name=None, family_name=None, date_of_birth=None, sex=None, postcode=None),  # NHS: staged
    ]


def test_rows_with_blank_identity_fields_are_staged_and_counted(settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    code = ORG["health"]
    rows = blank_identity_rows()
    drop(settings, code, render("health", rows))
    [result] = run_intake(settings, code, NIGHT)
    assert (result["outcome"], result["rows_read"], result["rows_accepted"], result["rows_rejected"]) == (
        "accepted_with_rejections",
        6,
        5,
        1,
    )

    receipt_path = Path(result["receipt_path"])
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    assert [(r["row"], r["column"], r["rule"]) for r in receipt["rejected_rows"]] == [(6, "*", "too_little_identity")]
    assert receipt["rule_counts"] == {"*:too_little_identity": 1}
    assert receipt["incomplete_rows"] == {"Forename": 2, "Surname": 1, "DateOfBirth": 2, "Gender": 2, "Postcode": 2}
    assert receipt["next_steps"] == [ADVICE["too_little_identity"], INCOMPLETE_ADVICE]
    assert {(c["rule"], c["column"]): c["unexpected_count"] for c in receipt["checks"]}[
        ("too_little_identity", "*")
    ] == 1
    text = receipt_path.with_suffix(".txt").read_text(encoding="utf-8")
    assert (
        "Rows accepted with a blank identity field: Forename 2, Surname 1, DateOfBirth 2, Gender 2, Postcode 2.\n"
        in text
    )
    assert "  row 6: column *: too_little_identity\n" in text

    staged = duckdb.sql(
        "SELECT source_row, given_name, family_name, date_of_birth, sex, postcode, area, match_key, nhs_key, "
        "source_key "
        f"FROM read_parquet('{result['staged_path']}', hive_partitioning = false) ORDER BY source_row"
    ).fetchall()
    by_row = {r[0]: r[1:] for r in staged}
    assert sorted(by_row) == [1, 2, 3, 4, 6]
    given, family, dob, sex, postcode, area, match_key, nhs_key, source_key = range(9)
    assert by_row[1][given] and by_row[1][dob] == rows[0]["date_of_birth"] and by_row[1][match_key]
    assert by_row[2][given] is None and by_row[2][family] == CANARY + "b"
    assert by_row[2][match_key] is None, "no exact-match key without both names and the date of birth"
    assert by_row[2][nhs_key] is not None
    assert by_row[3][dob] is None and by_row[3][match_key] is None and by_row[3][nhs_key] is None
    assert (by_row[4][sex], by_row[4][postcode]) == (None, None)
    assert by_row[4][match_key] is not None
    assert by_row[6][:5] == (None, None, None, None, None)
    # A record without a postcode is placed in its organisation's first area.
    assert {r[area] for r in by_row.values()} == {"E06000047"}
    assert all(r[source_key] for r in by_row.values())

    # Counts, names and rules only: no value from the file in the receipt, the ledger or the logs.
    from sqlalchemy import text as sql

    from childindex.index.db import engine_for

    with engine_for(settings.index_url).connect() as conn:
        ledger = repr(conn.execute(sql("SELECT * FROM file_ledger")).all())
    for written in (receipt_path.read_text(encoding="utf-8"), text, ledger, caplog.text, repr(result)):
        assert CANARY not in written
        for value in (v for row in rows for f, v in row.items() if f in ("nhs_number", "local_id") and v):
            assert str(value) not in written
        assert "DH1 1AA" not in written


def test_the_pre_check_answers_the_same(data_dir: Path, tmp_path: Path) -> None:
    from childindex.intake import check_file
    from childindex.settings import load_settings

    settings = load_settings()
    path = tmp_path / "health_2026-11-24.csv"
    path.write_bytes(render("health", blank_identity_rows()))
    receipt = check_file(settings, settings.registry.get(ORG["health"]), path, NIGHT)
    assert (receipt.outcome, receipt.rows_accepted, receipt.rows_rejected) == ("accepted_with_rejections", 5, 1)
    assert receipt.incomplete_rows == {"Forename": 2, "Surname": 1, "DateOfBirth": 2, "Gender": 2, "Postcode": 2}
    assert CANARY not in receipt.to_text() and CANARY not in json.dumps(receipt.to_json())
