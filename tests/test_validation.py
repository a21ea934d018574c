from __future__ import annotations

import duckdb
import numpy as np

from childindex.identifiers import valid_nhs_numbers, valid_upns
from childindex.validation import nhs_valid_sql, postcode_sql, upn_valid_sql
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
