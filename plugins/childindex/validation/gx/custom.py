"""Custom GX expectations, evaluated in SQL by GX's SQL engine (registered on import).

The SQL is the same as the row rules' (:mod:`childindex.validation.validate`), so GX and the rules
agree by construction, and intake checks that they do. Imported only inside tasks and the
pre-check, never at DAG-parse time: GX takes seconds to import.
"""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from childindex.validation.validate import date_valid_sql, nhs_valid_sql, postcode_valid_sql, upn_valid_sql


def _col(column: sa.ColumnClause) -> str:
    return '"' + column.name.replace('"', '""') + '"'


class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_nhs_number"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: sa.ColumnClause, **kwargs: object):  # noqa: N805, ANN206 - GX's signature
        return sa.literal_column(nhs_valid_sql(_col(column)))


class ColumnValuesValidUpn(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_upn"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: sa.ColumnClause, **kwargs: object):  # noqa: N805, ANN206
        return sa.literal_column(upn_valid_sql(_col(column)))


class ColumnValuesValidPostcode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_postcode"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: sa.ColumnClause, **kwargs: object):  # noqa: N805, ANN206
        return sa.literal_column(postcode_valid_sql(_col(column)))


class ColumnValuesMatchDateFormat(ColumnMapMetricProvider):
    condition_metric_name = "column_values.match_date_format"
    condition_value_keys = ("date_format",)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: sa.ColumnClause, date_format: str, **kwargs: object):  # noqa: N805, ANN206
        return sa.literal_column(date_valid_sql(_col(column), date_format))


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
