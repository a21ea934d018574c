"""The organisation's own reference: deterministic authenticated encryption of local ids,
computed in bulk in DuckDB exactly as the Python definition says, readable back only with
the key and only for the organisation it was made for."""

from __future__ import annotations

import duckdb
import pytest

from childindex.staging.reference import (
    ReferenceRefused,
    decrypt_reference,
    encrypt_reference,
    reference_params,
    reference_sql,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
IDS = ["H0000001", "1", "PQZ-0042/7", "Ællïs-Ødegård 名前", "x" * 100, "é" * 100, "A" * 31, "B" * 32, "C" * 33]


def _sql_refs(organisation: str, ids: list[str | None]) -> list[str | None]:
    con = duckdb.connect()
    con.execute("CREATE TABLE ids (n INTEGER, local_id VARCHAR)")
    con.executemany("INSERT INTO ids VALUES (?, ?)", list(enumerate(ids)))
    sql = f"SELECT {reference_sql('local_id')} FROM ids ORDER BY n"
    return [r[0] for r in con.execute(sql, reference_params(KEY, organisation)).fetchall()]


def test_duckdb_computes_exactly_the_python_definition_in_bulk() -> None:
    got = _sql_refs("RH1", [*IDS, None])
    assert got[:-1] == [encrypt_reference(KEY, "RH1", i) for i in IDS]
    assert got[-1] is None


def test_a_reference_reads_back_to_the_id_and_is_the_same_every_time() -> None:
    for local_id in IDS:
        ref = encrypt_reference(KEY, "RH1", local_id)
        assert decrypt_reference(KEY, "RH1", ref) == local_id
        assert encrypt_reference(KEY, "RH1", local_id) == ref, "deterministic: reruns write the same notice"
        if len(local_id.encode()) >= 8:  # a shorter id's hex turns up in random hex by chance
            assert local_id.encode().hex() not in ref and local_id not in ref


def test_a_reference_means_nothing_outside_its_organisation_or_without_the_key() -> None:
    ref = encrypt_reference(KEY, "RH1", "H0000001")
    assert encrypt_reference(KEY, "RH2", "H0000001") != ref, "two organisations' record 1 differ"
    for key, organisation in ((KEY, "RH2"), (OTHER_KEY, "RH1")):
        with pytest.raises(ReferenceRefused):
            decrypt_reference(key, organisation, ref)


@pytest.mark.parametrize("change", ["flip_tag", "flip_body", "truncate", "extend", "not_hex", "empty"])
def test_an_altered_or_made_up_reference_is_refused_without_naming_a_value(change: str) -> None:
    ref = encrypt_reference(KEY, "RH1", "H0000001")
    flipped = {"0": "1"}.get(ref[0], "0")
    altered = {
        "flip_tag": flipped + ref[1:],
        "flip_body": ref[:-1] + {"0": "1"}.get(ref[-1], "0"),
        "truncate": ref[:-2],
        "extend": ref + "00",
        "not_hex": "zz" + ref[2:],
        "empty": "",
    }[change]
    with pytest.raises(ReferenceRefused) as err:
        decrypt_reference(KEY, "RH1", altered)
    assert "H0000001" not in str(err.value)


def test_the_keys_never_appear_in_the_sql_text() -> None:
    sql = reference_sql("local_id")
    params = reference_params(KEY, "RH1")
    assert all(f"${name}" in sql for name in params)
    assert KEY.hex() not in sql and "RH1" not in sql


def test_duckdb_reads_references_back_per_organisation_and_refuses_the_rest_as_null() -> None:
    import pyarrow as pa

    from childindex.staging.reference import key_rows, local_id_sql

    ids = ["H0000001", "x" * 100, "Zoë-ß" * 20]
    orgs = ["RH1", "840", "RH1"]
    refs = [encrypt_reference(KEY, o, i) for o, i in zip(orgs, ids, strict=True)]
    tampered = refs[0][:-2] + ("00" if not refs[0].endswith("00") else "01")
    con = duckdb.connect()
    con.register("k", pa.table(key_rows(KEY, ["RH1", "840"])))
    con.register(
        "r",
        pa.table(
            {
                "n": range(6),
                "organisation": [*orgs, "RH1", "840", "RH1"],
                "ref": [*refs, tampered, refs[0], "not hex at all"],  # altered; RH1's under 840; garbage
            }
        ),
    )
    got = con.execute(f"SELECT {local_id_sql('r.ref', 'k')} FROM r JOIN k USING (organisation) ORDER BY n").fetchall()
    assert [g[0] for g in got] == [*ids, None, None, None]
