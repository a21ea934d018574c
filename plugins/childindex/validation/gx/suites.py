"""Great Expectations suites, derived from the extract contracts, and how they are run.

One suite per agency, built from its contract by :func:`build_suite` and kept rendered in
``expectations/<agency>.json`` (a test fails when a file and its contract disagree), so the
contract is the one source of truth. Every expectation carries ``meta.rule`` and
``meta.column``: the same (rule, column) a receipt names.

GX runs each suite on the file's rows with ``SUMMARY`` results and
``partial_unexpected_count: 0`` and keeps only success and the unexpected *count*: GX's
default formats would copy the failing values (children's data) into the result. The row
numbers a receipt lists come from the same rules evaluated in DuckDB
(:mod:`childindex.validation.validate`); both engines must agree, rule by rule, or intake stops with
an error (a bug, never a data problem).

Two checks have no built-in expectation, so two small custom ones are defined here with
vectorised pandas implementations: the NHS number's modulus 11 and the UPN's check letter,
and strict date formats.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from childindex.contracts.contract import AGENCIES, Contract, load_contract
from childindex.errors import ValidationEnginesDisagree
from childindex.validation.validate import MAX_AGE_YEARS, STD
from childindex.whitelist import MAX_LENGTH

# GX must never phone home from a data pipeline, and its INFO chatter fills task logs.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class Check:
    """One expectation's outcome: counts only."""

    rule: str
    column: str
    expectation: str
    success: bool
    unexpected_count: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --------------------------------------------------------------------------- suites


def _exp(kind: str, rule: str, receipt_column: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"rule": rule, "column": receipt_column}}


def build_suite(contract: Contract) -> dict[str, Any]:
    """The GX suite of a contract, as the JSON-able dict stored in expectations/.

    Expectations name the agency's raw columns where the rule is about what was sent
    (required, codes, date formats) and the standardised field where it is about meaning
    (identifier checks, postcode, date ranges, uniqueness).
    """
    exps: list[dict[str, Any]] = []
    for col in contract.columns:
        if col.required:
            exps.append(_exp("expect_column_values_to_not_be_null", "required", col.name, column=col.name))
        if col.field in MAX_LENGTH:
            exps.append(
                _exp(
                    "expect_column_value_lengths_to_be_between",
                    "max_length",
                    col.name,
                    column=col.name,
                    max_value=MAX_LENGTH[col.field],
                )
            )
        if col.type == "date":
            exps.append(
                _exp(
                    "expect_column_values_to_match_date_format",
                    "date_format",
                    col.name,
                    column=col.name,
                    date_format=contract.date_format,
                )
            )
        if col.field == "date_of_birth":
            exps.append(
                _exp(
                    "expect_column_values_to_be_between",
                    "date_of_birth_range",
                    col.name,
                    column=STD + "date_of_birth",
                    min_value={"$PARAMETER": "min_date_of_birth"},
                    max_value={"$PARAMETER": "night"},
                )
            )
        if col.field in ("sex", "service", "sensitive"):
            codes = {"sex": contract.sex_codes, "service": contract.services, "sensitive": contract.sensitive_codes}[
                col.field
            ]
            exps.append(
                _exp(
                    "expect_column_values_to_be_in_set", "code_set", col.name, column=col.name, value_set=sorted(codes)
                )
            )
        if col.format == "nhs_number":
            exps.append(
                _exp(
                    "expect_column_values_to_be_valid_nhs_number",
                    "nhs_number_check",
                    col.name,
                    column=STD + "nhs_number",
                )
            )
        if col.format == "upn":
            exps.append(_exp("expect_column_values_to_be_valid_upn", "upn_check", col.name, column=STD + "upn"))
        if col.format == "postcode":
            exps.append(
                _exp("expect_column_values_to_be_valid_postcode", "postcode_format", col.name, column=STD + "postcode")
            )
        if col.field == "local_id":
            exps.append(
                _exp("expect_column_values_to_be_unique", "duplicate_local_id", col.name, column=STD + "local_id")
            )
    start, end = contract.column_for("involvement_start"), contract.column_for("involvement_end")
    if start and end:
        exps.append(
            _exp(
                "expect_column_pair_values_a_to_be_greater_than_b",
                "date_order",
                start.name,
                column_A=STD + "involvement_end",
                column_B=STD + "involvement_start",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    return {
        "name": f"childindex.{contract.agency}.v{contract.version}",
        "expectations": exps,
        "meta": {
            "generated_from": f"plugins/childindex/contracts/{contract.agency}.yaml",
            "contract_version": contract.version,
            "generated_by": "childindex contracts suites",
        },
    }


def render_suite(contract: Contract) -> str:
    return json.dumps(build_suite(contract), indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    return {f"{agency}.json": render_suite(load_contract(agency)) for agency in AGENCIES}


# --------------------------------------------------------------------------- running GX


@cache
def _gx() -> Any:
    """GX's ephemeral context, with our custom expectations registered (imported once)."""
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

    from childindex.validation.gx import custom as _gx_custom  # noqa: F401 - registers the custom expectations

    # GX closes its connection before reading the rows of a query's result; DuckDB's driver
    # drops unread rows on close. Buffer the rows first (a few aggregates per query).
    def execute_query(self, query):  # noqa: ANN001, ANN202
        with self.get_connection() as connection:
            return self._execute_query_with_recovery(connection, query).freeze()()

    SqlAlchemyExecutionEngine.execute_query = execute_query
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return gx, context


@cache
def _suite(agency: str) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    gx, context = _gx()
    spec = build_suite(load_contract(agency))
    suite = gx.ExpectationSuite(name=spec["name"])
    for e in spec["expectations"]:
        config = ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"])
        suite.add_expectation(config.to_domain_obj())
    return context.suites.add_or_update(suite)


def run_suite_on_duckdb(db_path: Path, agency: str, night: date, table: str = "std") -> list[Check]:
    """Validate ``table`` of a DuckDB database with the agency's suite, through GX's SQL
    engine (the rows never leave DuckDB). Returns counts only.

    Anything else GX computed is dropped here, and a result that carries values anyway
    (a GX change, a wrong result format) is refused rather than passed on.
    """
    _, context = _gx()
    datasource = context.data_sources.add_or_update_sql(
        name="childindex_work", connection_string=f"duckdb:///{db_path}", create_temp_table=False
    )
    try:
        asset = datasource.add_table_asset(name=f"{table}_{db_path.stem}", table_name=table)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        params = {"night": night, "min_date_of_birth": _years_before(night, MAX_AGE_YEARS)}
        try:
            result = batch.validate(_suite(agency), result_format=RESULT_FORMAT, expectation_parameters=params)
        finally:
            batch.data.execution_engine.close()
        return _counts_only(result)
    finally:
        context.data_sources.delete("childindex_work")
        # GX's engines hold DuckDB connections until collected; the file must be free for
        # staging (DuckDB shares a file only between connections configured alike).
        import gc

        gc.collect()


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _counts_only(result: Any) -> list[Check]:
    checks = []
    for r in result.results:
        res = r.result or {}
        if res.get("partial_unexpected_list") or res.get("unexpected_list") or res.get("unexpected_index_list"):
            raise ValidationEnginesDisagree("GX returned unexpected values; refusing to keep them")
        if r.exception_info and r.exception_info.get("raised_exception"):
            # The message can hold a value: keep only the expectation's name.
            raise ValidationEnginesDisagree(f"GX could not evaluate {r.expectation_config.type}")
        meta = r.expectation_config.meta or {}
        checks.append(
            Check(
                rule=meta["rule"],
                column=meta["column"],
                expectation=r.expectation_config.type,
                success=bool(r.success),
                unexpected_count=int(res.get("unexpected_count") or 0),
            )
        )
    return checks
