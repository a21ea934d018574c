"""Validation of one extract: the reader, the rule catalogue (SQL rules and GX suite), the file policy."""

from childindex.validation.rules import Rule, row_rules
from childindex.validation.sql import normalise_name_sql
from childindex.validation.validate import Checked, validate_file

__all__ = ["Checked", "Rule", "normalise_name_sql", "row_rules", "validate_file"]
