"""Running a contract's GX suite on a DuckDB table, keeping counts only.

GX runs each suite through its SQL engine (the rows never leave DuckDB) with ``SUMMARY``
results and ``partial_unexpected_count: 0``, and only success and the unexpected *count*
are kept: GX's default formats would copy failing values (children's data) into the
result, and a result that carries values anyway is refused.

GX is imported only when a suite first runs (the import takes seconds), in one ephemeral
context per process whose project config has analytics disabled: GX sends nothing, and its
INFO chatter stays out of task logs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from childindex.contracts.contract import Contract, contract_names, load_contract
from childindex.errors import ValidationEnginesDisagree
from childindex.validation.gx.suites import build_suite
from childindex.validation.rules import gx_params

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
GX_LOGGERS = ("great_expectations", "great_expectations._docs_decorators")
DATASOURCE = "childindex_work"


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


def run_suite_on_duckdb(db_path: Path, contract: Contract | str, night: date, table: str = "std") -> list[Check]:
    """Validate ``table`` of a DuckDB database with the contract's suite (the contract given,
    or a shipped contract by name). Returns counts only.

    The database must not be open in this process through another driver. Every connection
    GX opened to it is closed before returning, so the file is free again.
    """
    context = gx_context()
    try:
        return _validate(context, db_path, contract, night, table)
    finally:
        context.data_sources.delete(DATASOURCE)
        # GX's objects (gone with _validate's frame) hold DuckDB connections until
        # collected; DuckDB lets another connection open the file only once they are gone.
        import gc

        gc.collect()


@cache
def gx_context() -> Any:
    """The process's GX context, with the custom expectations registered (GX imported once)."""
    import gc

    context = _new_context()
    # Every validation ends with a full collection (run_suite_on_duckdb): without this, each
    # one walks GX's hundreds of thousands of long-lived objects again (0.2 s a file). Frozen,
    # they are left out of every later collection, and a forked task shares their pages.
    gc.freeze()
    return context


@cache
def gx_suite(contract: str) -> Any:
    """A shipped contract's suite as a GX object, added to the context (built from the catalogue)."""
    return _new_suite(load_contract(contract), shipped=True)


@cache
def _drafted_suite(contract_json: str) -> Any:
    """The suite of a contract that is not a shipped one (drafted or tested): one per distinct
    contract (a contract is frozen but not hashable, so it is keyed by its JSON)."""
    return _new_suite(Contract.model_validate_json(contract_json), shipped=False)


def suite_for(contract: Contract | str) -> Any:
    """The GX suite of a shipped contract (by name, or the same contract given), or of any other."""
    if isinstance(contract, str):
        return gx_suite(contract)
    if contract.name in contract_names() and contract == load_contract(contract.name):
        return gx_suite(contract.name)
    return _drafted_suite(contract.model_dump_json())


def _new_suite(contract: Contract, *, shipped: bool) -> Any:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    spec = build_suite(contract)
    name = spec["name"]
    if not shipped:  # a name of its own, so it never replaces the shipped suite in the context
        name += "~" + hashlib.sha256(contract.model_dump_json().encode()).hexdigest()[:12]
    suite = gx.ExpectationSuite(name=name)
    for e in spec["expectations"]:
        config = ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"])
        suite.add_expectation(config.to_domain_obj())
    return gx_context().suites.add_or_update(suite)


def _validate(context: Any, db_path: Path, contract: Contract | str, night: date, table: str) -> list[Check]:
    datasource = context.data_sources.add_or_update_sql(
        name=DATASOURCE, connection_string=f"duckdb:///{db_path}", create_temp_table=False
    )
    try:
        asset = datasource.add_table_asset(name=f"{table}_{db_path.stem}", table_name=table)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        params = gx_params(night)
        try:
            result = batch.validate(suite_for(contract), result_format=RESULT_FORMAT, expectation_parameters=params)
        finally:
            batch.data.execution_engine.close()
        return _counts_only(result)
    finally:
        datasource.get_engine().dispose()  # the datasource's own engine looked the table up


def _new_context() -> Any:
    """An ephemeral GX context that sends no analytics and draws no progress bars.

    ``analytics_enabled=False`` in the project config decides for this context whatever
    the environment says (GX reads ``GX_ANALYTICS_ENABLED`` only when the config leaves it
    unset), so nothing in the process environment is touched.
    """
    for name in GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from childindex.validation.gx.custom import register_custom_expectations

    register_custom_expectations()
    _buffer_query_results()
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@cache
def _buffer_query_results() -> None:
    """GX closes its connection before reading the rows of a query's result; DuckDB's driver
    drops unread rows on close. Buffer the rows first (a few aggregates per query)."""
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine
    from sqlalchemy.engine import Result

    def execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Result[Any]:
        with self.get_connection() as connection:
            return self._execute_query_with_recovery(connection, query).freeze()()

    SqlAlchemyExecutionEngine.execute_query = execute_query  # type: ignore[method-assign]


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
