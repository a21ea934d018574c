"""A contract's ``missing_identity`` option: which rows with a blank identity field are staged.

One small extract holds a row blank in each identity field (and in pairs of the names and
date of birth, and in all of them), each with a valid NHS number, a valid UPN, or neither,
plus malformed values beside blanks (set aside as blanks, except under ``reject``). Read
under each option and each identifier layout, the rows staged and rejected, the values set
aside, the receipt's rule counts and ``incomplete_rows``, and the GX suite's verdicts must be
exactly what the option says. No value reaches a receipt, a GX
result or a log.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from childindex.contracts import Contract, load_contract
from childindex.receipts import HEADER_ROWS, Receipt, new_receipt
from childindex.validation import validate_file
from childindex.validation.rules import expectation_configs, row_rules
from childindex.whitelist import IDENTITY_FIELDS, NAME_AND_BIRTH_FIELDS
from tests.helpers import ORG, child, file_name, nhs, render, upn

NIGHT = date(2026, 11, 24)
OPTIONS = ("reject", "with_identifier", "stage")
CANARY = "Qzmissingcanary"
BAD_NHS = nhs(3)[:9] + str((int(nhs(3)[9]) + 1) % 10)
BAD_UPN = ("B" if upn(5)[0] == "A" else "A") + upn(5)[1:]


def variant(name: str, option: str) -> Contract:
    """A shipped contract with its missing_identity option set to ``option``."""
    data = load_contract(name).model_dump()
    data["missing_identity"] = option
    return Contract.model_validate(data)


# (blank fields, (NHS number, UPN) each None / "ok" / "bad", malformed values beside the blanks)
Spec = tuple[frozenset[str], tuple[str | None, str | None], dict[str, str]]
ONE_ID = (("ok", None), (None, "ok"), (None, None))
SPECS: list[Spec] = [
    *((frozenset({f}), ids, {}) for f in IDENTITY_FIELDS for ids in ONE_ID),
    *((frozenset(pair), ids, {}) for pair in combinations(NAME_AND_BIRTH_FIELDS, 2) for ids in ONE_ID),
    (frozenset(IDENTITY_FIELDS), ("ok", None), {}),
    (frozenset(IDENTITY_FIELDS), (None, "ok"), {}),
    (frozenset(IDENTITY_FIELDS), (None, None), {}),
    (frozenset({"sex", "postcode"}), (None, None), {}),
    (frozenset({"given_name", "sex", "postcode"}), (None, None), {}),
    (frozenset({"given_name", "family_name"}), ("bad", "ok"), {}),  # a bad NHS number is still a rejection
    (frozenset({"given_name", "family_name"}), (None, "bad"), {}),
    (frozenset({"given_name"}), ("bad", None), {}),
    (frozenset({"given_name"}), ("ok", None), {"date_of_birth": "31/02/2015"}),  # malformed, not blank
    (frozenset({"family_name"}), (None, None), {"postcode": "NOTAPOSTCODE"}),
    (frozenset(), (None, None), {"sex": "Qz", "date_of_birth": "31/02/2015"}),
    (frozenset(), ("bad", None), {"postcode": "NOTAPOSTCODE"}),
    (frozenset(), (None, None), {}),
    (frozenset(), ("ok", "ok"), {}),
]


def rows_for(sector: str, canary: bool = False) -> list[dict[str, object]]:
    rows = []
    for i, (blank, (nhs_state, upn_state), malformed) in enumerate(SPECS, start=1):
        over: dict[str, object] = {f: None for f in blank}
        over["nhs_number"] = {"ok": nhs(i), "bad": BAD_NHS, None: None}[nhs_state]
        over["upn"] = {"ok": upn(i), "bad": BAD_UPN, None: None}[upn_state]
        over.update(malformed)
        if canary:  # every value that is there carries the canary
            for f in ("given_name", "family_name", "contact_route"):
                if f not in blank:
                    over[f] = f"{CANARY}{i}"
        rows.append(child(i, sector, **over))
    return rows


MALFORMED_RULE = {"date_of_birth": "date_format", "postcode": "postcode_format", "sex": "code_set"}


def expected(contract: Contract) -> tuple[set[tuple[int, str, str]], set[tuple[int, str, str]], dict[str, int]]:
    """The reference: (row, column, rule) of every rejection and of every value set aside,
    and the accepted rows' blanks (as sent or set aside) by column."""
    col = {c.field: c for c in contract.columns}
    rejections: set[tuple[int, str, str]] = set()
    set_aside: set[tuple[int, str, str]] = set()
    blanks: Counter[str] = Counter()
    option = contract.missing_identity
    for i, (blank, (nhs_state, upn_state), malformed) in enumerate(SPECS, start=1):
        got: set[tuple[int, str, str]] = set()
        checks = (("nhs_number", nhs_state, "nhs_number_check"), ("upn", upn_state, "upn_check"))
        for field, state, rule in checks:
            if field in col and state == "bad":
                got.add((i, col[field].name, rule))
        broken = {(i, col[f].name, MALFORMED_RULE[f]) for f in malformed}
        # Under reject a malformed value rejects the row; otherwise it counts as a blank.
        missing = blank if option == "reject" else blank | set(malformed)
        has_id = any(field in col and state == "ok" for field, state, _ in checks)
        if option == "reject":
            got |= broken | {(i, col[f].name, "required") for f in blank}
        elif option == "with_identifier" and missing and not has_id:
            got.add((i, "*", "too_little_identity"))
        elif option == "stage" and len(missing & set(NAME_AND_BIRTH_FIELDS)) >= 2 and not has_id:
            got.add((i, "*", "too_little_identity"))
        if got:  # a rejected row lists every rule it broke
            rejections |= got | broken
        else:
            set_aside |= broken
            blanks.update(col[f].name for f in missing)
    order = [c.name for c in contract.columns]
    return rejections, set_aside, {c: blanks[c] for c in order if blanks[c]}


def check(settings: Any, contract: Contract, rows: list[dict[str, object]], tmp_path: Path) -> tuple[Receipt, list]:
    """Validate an extract under ``contract`` as intake does; the receipt and the accepted rows' numbers."""
    organisation = settings.registry.get(ORG[contract.sector])
    path = tmp_path / file_name(contract.name, NIGHT)
    path.write_bytes(render(contract.name, rows))
    receipt, _ = new_receipt(organisation, contract, path, NIGHT)
    with validate_file(settings, organisation, contract, path, NIGHT, receipt, []) as checked:
        staged = [r[0] for r in checked.con.execute(f"SELECT _row FROM {checked.accepted} ORDER BY 1").fetchall()]
    receipt.accept()
    return receipt, staged


@pytest.fixture()
def lenient(data_dir: Path):
    from childindex.settings import load_settings

    settings = load_settings()
    settings.validation.max_rejected_share = 1.0  # keep the file, however many rows the option rejects
    return settings


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("contract_name", ["health_chis", "education_mis", "social_care_cms"])
def test_each_option_stages_and_rejects_exactly_what_it_says(lenient, tmp_path: Path, contract_name: str, option: str):
    """health_chis carries an NHS number only, education_mis a UPN only, social_care_cms both."""
    contract = variant(contract_name, option)
    want_rejected, want_aside, want_incomplete = expected(contract)
    receipt, staged = check(lenient, contract, rows_for(contract.sector), tmp_path)

    # The reference counts data rows from 1; receipts number rows as a spreadsheet does.
    got = {(r.row - HEADER_ROWS, r.column, r.rule) for r in receipt.rejected_rows}
    assert got == want_rejected
    assert {(r.row - HEADER_ROWS, r.column, r.rule) for r in receipt.values_set_aside} == want_aside
    assert receipt.values_set_aside_total == len(want_aside)
    assert receipt.set_aside_counts == dict(Counter(f"{column}:{rule}" for _, column, rule in want_aside))
    assert bool(want_aside) == (option == "stage" or (option == "with_identifier" and contract.sector != "education"))
    rejected_rows = {row for row, _, _ in want_rejected}
    assert staged == [i for i in range(1, len(SPECS) + 1) if i not in rejected_rows]
    assert (receipt.rows_read, receipt.rows_accepted, receipt.rows_rejected) == (
        len(SPECS),
        len(SPECS) - len(rejected_rows),
        len(rejected_rows),
    )
    assert receipt.incomplete_rows == want_incomplete
    assert list(receipt.incomplete_rows) == list(want_incomplete), "in the contract's column order"
    assert receipt.rule_counts == dict(Counter(f"{column}:{rule}" for _, column, rule in want_rejected | want_aside))

    # GX counted every rule exactly as the SQL did, too_little_identity included.
    by_rule = {(c["rule"], c["column"]): c for c in receipt.checks}
    assert set(by_rule) == {(r.rule, r.column) for r in row_rules(contract)}
    for (rule, column), c in by_rule.items():
        assert c["unexpected_count"] == receipt.rule_counts.get(f"{column}:{rule}", 0), (rule, column)
        assert c["success"] == (c["unexpected_count"] == 0)
    identity_columns = {c.name for c in contract.columns if c.field in IDENTITY_FIELDS}
    required = {column for rule, column in by_rule if rule == "required"}
    if option == "reject":
        assert identity_columns <= required and ("too_little_identity", "*") not in by_rule
    else:
        assert not identity_columns & required
        assert by_rule[("too_little_identity", "*")]["unexpected_count"] == sum(
            rule == "too_little_identity" for _, _, rule in want_rejected
        )
        assert by_rule[("too_little_identity", "*")]["unexpected_count"] > 0
    # The columns that are never identity fields stay required under every option.
    assert {contract.column_for(f).name for f in ("local_id", "service", "contact_route")} <= required


def test_the_suite_checks_the_identity_class_against_what_the_option_allows() -> None:
    for option, allowed in (
        ("with_identifier", ["complete", "identifier"]),
        ("stage", ["complete", "identifier", "partial"]),
    ):
        [e] = [
            e for e in expectation_configs(variant("health_chis", option)) if e["meta"]["rule"] == "too_little_identity"
        ]
        assert e == {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "std_identity", "value_set": allowed},
            "meta": {"rule": "too_little_identity", "column": "*"},
        }
    assert not [
        e for e in expectation_configs(variant("health_chis", "reject")) if e["meta"]["rule"] == "too_little_identity"
    ]
    # Listed once, after every single-column rule (the whole row's rules come last).
    rules = row_rules(load_contract("social_care_cms"))
    assert [r.rule for r in rules].count("too_little_identity") == 1
    assert [r.rule for r in rules].index("too_little_identity") > max(
        i for i, r in enumerate(rules) if r.rule in ("required", "code_set", "postcode_format")
    )


def test_no_value_from_the_rows_reaches_receipts_gx_results_or_logs(
    lenient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contract = variant("social_care_cms", "stage")
    rows = rows_for(contract.sector, canary=True)
    receipt, staged = check(lenient, contract, rows, tmp_path)
    assert receipt.incomplete_rows and staged and receipt.rule_counts.get("*:too_little_identity")
    assert CANARY.encode() in (tmp_path / file_name(contract.name, NIGHT)).read_bytes()
    assert receipt.values_set_aside
    values = [CANARY, BAD_NHS, BAD_UPN, "31/02/2015", "NOTAPOSTCODE", "Qz", nhs(1), upn(2), "LS6 2AB"]
    texts = [json.dumps(receipt.to_json()), receipt.to_text(), repr(receipt), caplog.text, repr(receipt.checks)]
    for text in texts:
        for value in values:
            assert value not in text
