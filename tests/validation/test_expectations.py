"""The GX suites: generated from the contracts, run with a result format that keeps no values."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from childindex.contracts import contract_names, load_contract
from childindex.validation.gx.runner import RESULT_FORMAT
from childindex.validation.gx.suites import build_suite, render_all

ROOT = Path(__file__).resolve().parents[2]
SUITES_DIR = ROOT / "expectations"  # the repository's, found from here: the package never reaches outside itself


def test_suites_on_disk_are_generated_from_the_contracts() -> None:
    assert sorted(p.name for p in SUITES_DIR.glob("*.json")) == sorted(render_all())
    for name, text in render_all().items():
        assert (SUITES_DIR / name).read_text(encoding="utf-8") == text, f"run 'childindex contracts suites' ({name})"


@pytest.mark.parametrize("contract", contract_names())
def test_sql_rules_and_suite_come_from_one_catalogue_in_one_order(contract: str) -> None:
    from childindex.validation.rules import row_rules

    suite = build_suite(load_contract(contract))
    in_suite = [(e["meta"]["rule"], e["meta"]["column"]) for e in suite["expectations"]]
    assert in_suite == [(r.rule, r.column) for r in row_rules(load_contract(contract))]


@pytest.mark.parametrize("contract", contract_names())
def test_every_row_rule_has_its_expectation(contract: str) -> None:
    from childindex.validation.rules import row_rules

    suite = build_suite(load_contract(contract))
    in_suite = {(e["meta"]["rule"], e["meta"]["column"]) for e in suite["expectations"]}
    in_sql = {(r.rule, r.column) for r in row_rules(load_contract(contract))}
    assert in_suite == in_sql


@pytest.mark.parametrize("contract", contract_names())
def test_a_suite_is_named_by_its_contract_and_version(contract: str) -> None:
    c = load_contract(contract)
    assert build_suite(c)["name"] == f"childindex.{contract}.v{c.version}"
    assert f"{contract}.json" in render_all()


CANARY = "Qzgxcanary"


def _table(tmp_path: Path) -> Path:
    """A tiny ``std`` table in a DuckDB file: 4 rows, the third full of canaries, the fourth
    without names, date of birth or NHS number (too little identity for health_chis)."""
    import duckdb

    db = tmp_path / "gx.duckdb"
    con = duckdb.connect(str(db))
    contract = load_contract("health_chis")
    raw = ", ".join(
        f'NULL::VARCHAR AS "{c}"'
        for c in contract.column_names
        if c
        not in (
            "LocalPatientID",
            "Forename",
            "Surname",
            "DateOfBirth",
            "Gender",
            "Postcode",
            "ServiceCode",
            "TeamContact",
        )
    )
    con.execute(f"""
        CREATE TABLE std AS SELECT * FROM (VALUES
            (1, 'H1', 'A', 'B', '01/01/2015', '1', 'LS6 2AB', 'school_nursing', 'x', 'H1', '9990000018', NULL,
             'LS6 2AB', DATE '2015-01-01', NULL::DATE, NULL::DATE, 'complete'),
            (2, 'H2', 'A', 'B', '02/01/2015', '2', 'LS6 2AB', 'school_nursing', 'x', 'H2', NULL, NULL,
             'LS6 2AB', DATE '2015-01-02', NULL, NULL, 'complete'),
            (3, 'H3', '{CANARY}', 'B', '03/01/2015', '{CANARY}', '{CANARY}', 'school_nursing', 'x', 'H3',
             '{CANARY}', NULL, '{CANARY}', DATE '2015-01-03', NULL, NULL, 'complete'),
            (4, 'H4', NULL, NULL, NULL, '1', 'LS6 2AB', 'school_nursing', 'x', 'H4', NULL, NULL,
             'LS6 2AB', NULL, NULL, NULL, 'short')
        ) t(_row, LocalPatientID, Forename, Surname, DateOfBirth, Gender, Postcode, ServiceCode, TeamContact,
            std_local_id, std_nhs_number, std_upn, std_postcode, std_date_of_birth, std_involvement_start,
            std_involvement_end, std_identity), (SELECT {raw})
    """)
    con.close()
    return db


def test_gx_results_keep_counts_never_values(tmp_path: Path) -> None:
    from childindex.validation.gx.runner import run_suite_on_duckdb

    checks = run_suite_on_duckdb(_table(tmp_path), "health_chis", date(2026, 11, 24))
    by_rule = {(c.rule, c.column): c for c in checks}
    assert by_rule[("code_set", "Gender")].unexpected_count == 1
    assert by_rule[("nhs_number_check", "NHSNumber")].unexpected_count == 1
    assert by_rule[("postcode_format", "Postcode")].unexpected_count == 1
    assert ("required", "Forename") not in by_rule  # health_chis stages a blank identity field
    assert by_rule[("required", "TeamContact")].success
    assert by_rule[("too_little_identity", "*")].unexpected_count == 1
    assert by_rule[("duplicate_local_id", "LocalPatientID")].success
    assert CANARY not in repr(checks)


def test_gx_default_result_format_would_leak_which_is_why_it_is_not_used(tmp_path: Path) -> None:
    from childindex.validation.gx.runner import gx_context, gx_suite

    context = gx_context()
    ds = context.data_sources.add_sql(name="leak_test", connection_string=f"duckdb:///{_table(tmp_path)}")
    try:
        batch = ds.add_table_asset("std", table_name="std").add_batch_definition_whole_table("w").get_batch()
        params = {"night": date(2026, 11, 24), "min_date_of_birth": date(2001, 11, 24)}
        leaky = batch.validate(gx_suite("health_chis"), expectation_parameters=params)  # GX's default: SUMMARY
        assert CANARY in str(leaky.to_json_dict())
        safe = batch.validate(gx_suite("health_chis"), result_format=RESULT_FORMAT, expectation_parameters=params)
        assert CANARY not in str(safe.to_json_dict())
        batch.data.execution_engine.close()
    finally:
        context.data_sources.delete("leak_test")


def test_importing_validation_imports_no_gx_and_changes_no_environment() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys; before = dict(os.environ)\n"
        "import childindex.validation, childindex.validation.gx.custom, childindex.validation.gx.runner\n"
        "import childindex.validation.gx.suites, childindex.intake, childindex.staging, childindex.keys\n"
        "assert dict(os.environ) == before, 'an import changed the environment'\n"
        "assert 'great_expectations' not in sys.modules, 'an import imported GX'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gx_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Analytics are off in the context's own config, whatever the environment says, and a
    suite run opens no network connection at all."""
    import socket

    from childindex.validation.gx import runner

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("no network in this test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "True")
    context = runner._new_context()
    assert context.config.analytics_enabled is False and context.variables.analytics_enabled is False
    assert runner.gx_context().config.analytics_enabled is False
    checks = runner.run_suite_on_duckdb(_table(tmp_path), "health_chis", date(2026, 11, 24))
    assert checks and attempts == []
