"""The GX suites: generated from the contracts, run with a result format that keeps no values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from childindex.contracts import AGENCIES, load_contract
from childindex.expectations import RESULT_FORMAT, SUITES_DIR, build_suite, render_all, run_suite

ROOT = Path(__file__).resolve().parents[1]


def test_suites_on_disk_are_generated_from_the_contracts() -> None:
    assert SUITES_DIR == ROOT / "expectations"
    for name, text in render_all().items():
        assert (SUITES_DIR / name).read_text(encoding="utf-8") == text, f"run 'childindex contracts suites' ({name})"


@pytest.mark.parametrize("agency", AGENCIES)
def test_every_row_rule_has_its_expectation(agency: str) -> None:
    from childindex.validation import row_rules

    suite = build_suite(load_contract(agency))
    in_suite = {(e["meta"]["rule"], e["meta"]["column"]) for e in suite["expectations"]}
    in_sql = {(r.rule, r.column) for r in row_rules(load_contract(agency))}
    assert in_suite == in_sql


CANARY = "Qzgxcanary"


def _frame() -> pd.DataFrame:
    contract = load_contract("health")
    rows = {c.name: ["x", "y", CANARY] for c in contract.columns}
    rows["Gender"] = ["1", "2", CANARY]
    rows["ServiceCode"] = ["school_nursing"] * 3
    rows["DateOfBirth"] = ["01/01/2015", "02/01/2015", "03/01/2015"]
    rows["CaseloadStart"] = rows["CaseloadEnd"] = [None] * 3
    frame = pd.DataFrame(rows)
    frame["std_local_id"] = ["a", "b", "c"]
    frame["std_nhs_number"] = ["9990000018", None, CANARY]
    frame["std_upn"] = [None] * 3
    frame["std_postcode"] = ["LS6 2AB", "LS6 2AB", CANARY]
    frame["std_date_of_birth"] = pd.to_datetime(["2015-01-01", "2015-01-02", "2015-01-03"])
    frame["std_involvement_start"] = frame["std_involvement_end"] = pd.NaT
    return frame


def _params() -> dict:
    night = pd.Timestamp("2026-11-24")
    return {"night": night, "min_date_of_birth": night - pd.DateOffset(years=25)}


def test_gx_results_keep_counts_never_values() -> None:
    checks = run_suite("health", _frame(), _params())
    by_rule = {(c.rule, c.column): c for c in checks}
    assert by_rule[("code_set", "Gender")].unexpected_count == 1
    assert by_rule[("nhs_number_check", "NHSNumber")].unexpected_count == 1
    assert by_rule[("postcode_format", "Postcode")].unexpected_count == 1
    assert by_rule[("required", "Forename")].success
    assert CANARY not in repr(checks)


def test_gx_default_result_format_would_leak_which_is_why_it_is_not_used() -> None:
    from childindex.expectations import _gx, _suite

    _, _, batch_definition = _gx()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": _frame()})
    leaky = batch.validate(_suite("health"), expectation_parameters=_params())  # GX's default: SUMMARY
    assert CANARY in str(leaky.to_json_dict())
    safe = batch.validate(_suite("health"), result_format=RESULT_FORMAT, expectation_parameters=_params())
    assert CANARY not in str(safe.to_json_dict())
