"""Shielded services: a sensitive involvement reaches the index only as "a sensitive service
is involved, and here is how to reach it": never its service type, never its address."""

from __future__ import annotations

import json
from datetime import date

import duckdb
from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.whitelist import SENSITIVE_SERVICE
from tests.helpers import ORG, child, contract_of, drop, render

NIGHT = date(2026, 11, 24)
REFUGE = "ZE1 9QX"  # the sensitive record's postcode: it must go nowhere


def _with_flag(sector: str, rows: list[dict], flags: list[str]) -> bytes:
    """Render rows in the sector's contract and fill its sensitive column with ``flags``."""
    from childindex.contracts import load_contract

    c = load_contract(contract_of(sector))
    name = c.column_for("sensitive").name
    lines = render(sector, rows).decode(c.file.encoding).splitlines()
    header = lines[0].split(c.file.delimiter)
    at = header.index(name)
    out = [lines[0]]
    for line, flag in zip(lines[1:], flags, strict=True):
        cells = line.split(c.file.delimiter)
        cells[at] = flag
        out.append(c.file.delimiter.join(cells))
    return ("\n".join(out) + "\n").encode(c.file.encoding)


def test_a_sensitive_involvement_keeps_only_its_existence_and_route(settings) -> None:
    shielded = child(1, postcode=REFUGE, service="community_paediatrics")
    drop(settings, ORG["health"], _with_flag("health", [shielded, child(2)], ["Y", "N"]), night=NIGHT)
    # The same child is known to school at a home postcode: the index may show that one.
    drop(settings, ORG["education"], render("education", [child(1, "education", nhs_number=None)]), night=NIGHT)
    for sector in ("health", "education"):
        run_intake(settings, ORG[sector], NIGHT)
    link_pending(settings, NIGHT)
    receipt = json.loads(next(settings.outbox(ORG["health"]).glob("*.receipt.json")).read_text())
    assert receipt["rows_sensitive"] == 1 and receipt["rows_accepted"] == 2
    text_receipt = next(settings.outbox(ORG["health"]).glob("*.receipt.txt")).read_text()
    assert "Rows flagged sensitive: 1" in text_receipt
    with engine_for(settings.index_url).connect() as conn:
        services = conn.execute(
            text("SELECT organisation, sector, service FROM involvement ORDER BY organisation, service")
        ).all()
        postcodes = conn.execute(text("SELECT postcode FROM child UNION ALL SELECT postcode FROM source_record")).all()
    assert (ORG["health"], "health", SENSITIVE_SERVICE) in [tuple(s) for s in services]
    assert "community_paediatrics" not in {s[2] for s in services}
    assert REFUGE not in {p[0] for p in postcodes}
    # Nor in the staging files that linkage read, nor anywhere in the index file.
    staged = (
        duckdb.connect()
        .execute(
            "SELECT count(*) FROM read_parquet($g) WHERE postcode = $p OR service = 'community_paediatrics'",
            {"g": f"{settings.staging_dir}/*/*/*.parquet", "p": REFUGE},
        )
        .fetchall()[0][0]
    )
    assert staged == 0
    index = settings.index_url.split("///", 1)[1]
    assert REFUGE.encode() not in open(index, "rb").read()  # noqa: SIM115, PTH123


def test_an_unknown_flag_is_a_code_set_rejection(settings) -> None:
    code = ORG["social_care"]
    drop(settings, code, _with_flag("social_care", [child(1, "social_care")], ["maybe"]), night=NIGHT)
    [outcome] = run_intake(settings, code, NIGHT)
    receipt = json.loads(next(settings.outbox(code).glob("*.receipt.json")).read_text())
    assert outcome["outcome"] == "rejected"  # its only row is rejected
    assert {(r["column"], r["rule"]) for r in receipt["rejected_rows"]} == {("SENSITIVE", "code_set")}
