"""Custom GX expectations with vectorised pandas implementations (registered on import).

Imported only inside tasks and the pre-check, never at DAG-parse time: GX takes seconds to
import.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from childindex.identifiers import valid_nhs_numbers, valid_upns


def _series(values: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index)


class ColumnValuesValidNhsNumber(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_nhs_number"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:  # noqa: N805 - GX's signature
        return _series(valid_nhs_numbers(column.to_numpy(dtype=object)), column)


class ColumnValuesValidUpn(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_upn"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:  # noqa: N805
        return _series(valid_upns(column.to_numpy(dtype=object)), column)


class ColumnValuesMatchDateFormat(ColumnMapMetricProvider):
    condition_metric_name = "column_values.match_date_format"
    condition_value_keys = ("date_format",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, date_format: str, **kwargs: object) -> pd.Series:  # noqa: N805
        return pd.to_datetime(column, format=date_format, errors="coerce").notna()


class ExpectColumnValuesToBeValidNhsNumber(ColumnMapExpectation):
    """Each value is a 10-digit NHS number with a correct modulus 11 check digit."""

    map_metric = "column_values.valid_nhs_number"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeValidUpn(ColumnMapExpectation):
    """Each value is a 13-character UPN whose first letter is the DfE check letter."""

    map_metric = "column_values.valid_upn"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToMatchDateFormat(ColumnMapExpectation):
    """Each value parses as a date in ``date_format`` (strftime codes)."""

    date_format: str
    map_metric = "column_values.match_date_format"
    success_keys: ClassVar[tuple[str, ...]] = ("date_format", "mostly")
