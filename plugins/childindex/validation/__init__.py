"""Validation of one extract: the reader, the rule catalogue (SQL rules and GX suite), the file policy."""

from childindex.validation.validate import validate_file

__all__ = ["validate_file"]
