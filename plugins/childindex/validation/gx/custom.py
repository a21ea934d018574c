"""Custom GX expectations for the checks GX has no built-in for, evaluated by its SQL engine.

Their SQL is the row rules' own (:mod:`childindex.validation.sql`), so GX and the rules
agree by construction, and intake checks that they do. GX registers an expectation when
its class is defined, so the classes are defined inside :func:`register_custom_expectations`,
which the runner calls once: importing this module imports no GX (that takes seconds) and
registers nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

from childindex.validation.sql import date_valid_sql, nhs_valid_sql, postcode_valid_sql, quote_ident, upn_valid_sql


@cache
def register_custom_expectations() -> None:
    """Define, and so register with GX, the four custom expectations (once per process)."""
    import sqlalchemy as sa
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
        condition_metric_name = "column_values.valid_nhs_number"

        @column_condition_partial(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(cls, column: sa.ColumnClause[Any], **kwargs: object) -> sa.ColumnClause[Any]:
            return sa.literal_column(nhs_valid_sql(quote_ident(column.name)))

    class ColumnValuesValidUpn(ColumnMapMetricProvider):
        condition_metric_name = "column_values.valid_upn"

        @column_condition_partial(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(cls, column: sa.ColumnClause[Any], **kwargs: object) -> sa.ColumnClause[Any]:
            return sa.literal_column(upn_valid_sql(quote_ident(column.name)))

    class ColumnValuesValidPostcode(ColumnMapMetricProvider):
        condition_metric_name = "column_values.valid_postcode"

        @column_condition_partial(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(cls, column: sa.ColumnClause[Any], **kwargs: object) -> sa.ColumnClause[Any]:
            return sa.literal_column(postcode_valid_sql(quote_ident(column.name)))

    class ColumnValuesMatchDateFormat(ColumnMapMetricProvider):
        condition_metric_name = "column_values.match_date_format"
        condition_value_keys = ("date_format",)

        @column_condition_partial(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(cls, column: sa.ColumnClause[Any], date_format: str, **kwargs: object) -> sa.ColumnClause[Any]:
            return sa.literal_column(date_valid_sql(quote_ident(column.name), date_format))

    class ExpectColumnValuesToBeValidNhsNumber(ColumnMapExpectation):
        """Each value is a 10-digit NHS number with a correct modulus 11 check digit."""

        map_metric = "column_values.valid_nhs_number"
        success_keys: ClassVar[tuple[str, ...]] = ("mostly",)

    class ExpectColumnValuesToBeValidUpn(ColumnMapExpectation):
        """Each value is a 13-character UPN whose first letter is the DfE check letter."""

        map_metric = "column_values.valid_upn"
        success_keys: ClassVar[tuple[str, ...]] = ("mostly",)

    class ExpectColumnValuesToBeValidPostcode(ColumnMapExpectation):
        """Each value is a full UK postcode in its standard form (upper case, one inner space)."""

        map_metric = "column_values.valid_postcode"
        success_keys: ClassVar[tuple[str, ...]] = ("mostly",)

    class ExpectColumnValuesToMatchDateFormat(ColumnMapExpectation):
        """Each value parses as a date in ``date_format`` (strftime codes)."""

        date_format: str
        map_metric = "column_values.match_date_format"
        success_keys: ClassVar[tuple[str, ...]] = ("date_format", "mostly")
