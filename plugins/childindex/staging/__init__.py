"""Staging: the common layout of accepted rows, pseudonymised, and its writer."""

from childindex.staging.layout import STAGING_COLUMNS, staging_path

__all__ = ["STAGING_COLUMNS", "staging_path"]
