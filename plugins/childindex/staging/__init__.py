"""Staging: the common layout of accepted rows, pseudonymised, and its writer."""

from childindex.staging.layout import STAGING_COLUMNS, staging_path
from childindex.staging.pseudonymise import hmac_hex, hmac_sql, key_id, key_params, pseudonym_sql
from childindex.staging.writer import write_staging

__all__ = [
    "STAGING_COLUMNS",
    "hmac_hex",
    "hmac_sql",
    "key_id",
    "key_params",
    "pseudonym_sql",
    "staging_path",
    "write_staging",
]
