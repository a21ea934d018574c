from __future__ import annotations

import duckdb

from childindex.staging.pseudonymise import hmac_hex, hmac_sql, key_params


def _sql(key: bytes, values: list[str | None], domain: str) -> list[str | None]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest($v) AS v", {"v": values})
    return [
        r[0] for r in con.execute(f"SELECT {hmac_sql('v', 'd')} FROM t", {**key_params(key), "d": domain}).fetchall()
    ]


def test_duckdb_hmac_equals_python_hmac_for_short_and_long_keys() -> None:
    values = ["9990000018", "H12345678", "Zoë", ""]
    for key in (b"k" * 32, b"long-key" * 20):
        assert _sql(key, values, "nhs_number") == [hmac_hex(key, "nhs_number", v) for v in values]


def test_null_stays_null() -> None:
    assert _sql(b"k" * 32, [None], "upn") == [None]


def test_domains_and_keys_separate() -> None:
    k1, k2 = b"a" * 32, b"b" * 32
    assert hmac_hex(k1, "nhs_number", "1") != hmac_hex(k1, "upn", "1")
    assert hmac_hex(k1, "nhs_number", "1") != hmac_hex(k2, "nhs_number", "1")


def test_key_is_never_in_sql_text() -> None:
    assert "k" * 32 not in hmac_sql("v", "d")
