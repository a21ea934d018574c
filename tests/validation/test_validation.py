from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pytest

from childindex.errors import FileRejected
from childindex.validation.identifiers import valid_nhs_numbers, valid_upns
from childindex.validation.policy import check_rejected_share, check_row_count
from childindex.validation.reader import OneRecordPerLine, blank_unpaired_quotes
from childindex.validation.sql import nhs_valid_sql, postcode_sql, upn_valid_sql
from tests.helpers import nhs, upn


def _sql_flags(expr: str, values: list[str | None]) -> list[bool]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest($v) AS v", {"v": values})
    return [r[0] for r in con.execute(f"SELECT {expr} FROM t").fetchall()]


def test_sql_nhs_check_agrees_with_reference() -> None:
    rng = np.random.default_rng(7)
    values = [nhs(i) for i in range(200)] + [f"{x:010d}" for x in rng.integers(0, 10**10, 2000)]
    values += ["", "12345", "99900000a8", None]
    expected = list(valid_nhs_numbers(values))
    assert _sql_flags(nhs_valid_sql("v"), values) == expected
    assert sum(expected) > 200  # both outcomes exercised


def test_sql_upn_check_agrees_with_reference() -> None:
    rng = np.random.default_rng(8)
    values = [upn(i) for i in range(200)]
    values += [
        "ABCDEFGHJKLMNPQRTUVWXYZ"[int(rng.integers(23))] + f"{int(x):012d}" for x in rng.integers(0, 10**12, 2000)
    ]
    values += ["", "A12", None]
    expected = list(valid_upns(values))
    assert _sql_flags(upn_valid_sql("v"), values) == expected
    assert 200 <= sum(expected) < len(values)


def test_postcode_normalisation() -> None:
    got = _sql_flags(postcode_sql("v"), ["ls62ab", " LS6  2AB ", "m1 1aa", "SW1A1AA", "X"])
    assert got == ["LS6 2AB", "LS6 2AB", "M1 1AA", "SW1A 1AA", "X"]


def test_lines_with_unpaired_quotes_are_blanked_and_the_rest_kept() -> None:
    lines = (
        b'a,"b, quoted",c\r\n'  # paired: kept, comma inside quotes and all
        b'a,"open,c\r\n'  # unpaired: blanked, CR too, line feed kept
        b'a,"say ""hi""",c\n'  # escaped quotes pair up: kept
        b"\n"  # blank lines stay blank
        b'x",y,z\n'
        b'last,"no newline'
    )
    out = blank_unpaired_quotes(lines)
    assert len(out) == len(lines)
    assert out.split(b"\n") == [
        b'a,"b, quoted",c\r',
        b"?" * len(b'a,"open,c\r'),
        b'a,"say ""hi""",c',
        b"",
        b"??????",
        b"?" * len(b'last,"no newline'),
    ]
    assert blank_unpaired_quotes(b'a,"b",c\n') == b'a,"b",c\n'


def test_one_record_per_line_holds_across_block_boundaries() -> None:
    lines = [b'%d,"v%d",w\n' % (i, i) if i % 7 else b'%d,"open\n' % i for i in range(200)]
    stream = OneRecordPerLine(io.BytesIO(b"".join(lines)), block=13)  # blocks split lines
    got = stream.read().split(b"\n")[:-1]
    assert len(got) == 200
    for i, line in enumerate(got):
        assert line == (lines[i][:-1] if i % 7 else b"?" * (len(lines[i]) - 1))


def test_validate_file_yields_the_checked_rows_read_only_and_always_deletes_its_work(
    data_dir: Path, tmp_path: Path
) -> None:
    from datetime import date

    from childindex.contracts import load_contract
    from childindex.receipts import new_receipt
    from childindex.settings import load_settings
    from childindex.validation import validate_file
    from tests.helpers import ORG, child, render

    settings, night = load_settings(), date(2026, 11, 24)
    organisation = settings.registry.get(ORG["health"])
    contract = load_contract(organisation.contract)
    path = tmp_path / "health_2026-11-24.csv"
    path.write_bytes(render("health", [child(i, **({"service": "Q"} if i == 4 else {})) for i in range(1, 11)]))
    receipt, _ = new_receipt(organisation, contract, path, night)
    with validate_file(settings, organisation, contract, path, night, receipt, []) as checked:
        assert checked.con.execute(f"SELECT count(*) FROM {checked.accepted}").fetchall() == [(9,)]
        assert checked.con.execute("SELECT row FROM rejected").fetchall() == [(4,)]
        assert (receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (10, 9, 1)
        assert receipt.checks, "GX has run before the rows are handed over"
        with pytest.raises(duckdb.Error):
            checked.con.execute("DELETE FROM rejected")
    assert list(settings.work_dir.iterdir()) == []

    with pytest.raises(RuntimeError), validate_file(settings, organisation, contract, path, night, receipt, []):
        raise RuntimeError("the caller failed")
    assert list(settings.work_dir.iterdir()) == []

    path.write_bytes(render("health", [child(i, service="Q") for i in range(1, 4)]))
    receipt, _ = new_receipt(organisation, contract, path, night)
    with (
        pytest.raises(FileRejected, match="all_rows_rejected"),
        validate_file(settings, organisation, contract, path, night, receipt, []),
    ):
        raise AssertionError("a rejected file's rows are never handed over")
    assert list(settings.work_dir.iterdir()) == []


# --------------------------------------------------------------------------- file policy


def _row_count_rejects(settings, rows: int, history: list[int]) -> bool:
    try:
        check_row_count(settings, rows, history)
    except FileRejected as exc:
        assert exc.rule == "row_count_anomaly"
        return True
    return False


def test_row_count_band_leaves_a_small_organisation_s_noise_alone(data_dir: Path) -> None:
    """Outside median/3..median*3 AND more than 50 rows (the slack) from the median: only
    then is a file's size an anomaly. A small organisation's 3 rows, then 11, is a night."""
    from childindex.settings import load_settings

    settings = load_settings()
    assert (settings.validation.row_count_factor, settings.validation.row_count_slack) == (3.0, 50)
    assert not _row_count_rejects(settings, 11, [3, 3, 3])  # nearly 4x, but 8 rows
    assert not _row_count_rejects(settings, 3, [10, 10, 10])  # a third, but 7 rows
    assert not _row_count_rejects(settings, 0, [40, 40, 40])  # a night with no changes
    assert not _row_count_rejects(settings, 260, [100, 100, 100])  # inside the band
    # A large change is still an anomaly, both ways; and so is a small one when the slack is 0.
    assert _row_count_rejects(settings, 20, [100, 100, 100])  # under a third and 80 rows fewer
    assert _row_count_rejects(settings, 301, [100, 100, 100])  # over 3x and 201 rows more
    assert _row_count_rejects(settings, 3500, [900, 1000, 1100])
    assert not _row_count_rejects(settings, 60, [10, 10])  # history too short to judge
    settings.validation.row_count_slack = 0
    assert _row_count_rejects(settings, 11, [3, 3, 3]) and _row_count_rejects(settings, 3, [10, 10, 10])
    assert not _row_count_rejects(settings, 9, [3, 3, 3])  # the band's edge is inside
    with pytest.raises(FileRejected, match=r"11 rows, outside 1 to 9 .* more than 0 rows from that median"):
        check_row_count(settings, 11, [3, 3, 3])


def test_rejected_share_is_checked_against_the_limit_given() -> None:
    check_rejected_share(0.2, 10, 2)  # at the limit: kept
    with pytest.raises(FileRejected, match="rejected_share_over_threshold: 20.0% .* limit is 10.0%"):
        check_rejected_share(0.1, 10, 2)
    with pytest.raises(FileRejected, match="all_rows_rejected"):
        check_rejected_share(1.0, 3, 3)
    check_rejected_share(0.0, 0, 0)  # a header-only file
