"""The columns linkage compares, derived in DuckDB from a record's minimal fields.

Input: any relation with ``source_key, organisation, given_name, family_name, date_of_birth,
sex, postcode, nhs_key, upn_key`` (staging files, or the index's source records). Output:
one row per record in the form the Splink model expects. Nothing here is stored: the
features are rebuilt from the minimal fields every time they are needed.
"""

from __future__ import annotations

from typing import Any

from childindex.validation.sql import normalise_name_sql
from childindex.whitelist import IDENTITY_FIELDS

# What linkage compares, as staging and the index's source_record both name it: a record's
# key and organisation, its pseudonymised identifiers and the whitelist's identity fields.
MINIMAL_COLUMNS = ("source_key", "organisation", *IDENTITY_FIELDS, "nhs_key", "upn_key")
# The parts of a (standardised) postcode the model compares: sector "DH1 7", district "DH1",
# area "DH"; NULL where a postcode does not have the part.
POSTCODE_PARTS = {
    "sector": "^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9]",
    "district": "^[A-Z]{1,2}[0-9][A-Z0-9]?",
    "area": "^[A-Z]{1,2}",
}


def features_sql(source: str) -> str:
    """SELECT of the linkage features over ``source`` (needs table ``formal_names``)."""
    given, family = normalise_name_sql("s.given_name"), normalise_name_sql("s.family_name")
    parts = ",\n               ".join(
        f"nullif(regexp_extract(s.postcode, '{pattern}', 0), '') AS postcode_{name}"
        for name, pattern in POSTCODE_PARTS.items()
    )
    return f"""
        SELECT s.source_key AS unique_id, s.organisation,
               nullif({given}, '') AS given,
               -- The formal names a given name can stand for (itself when it is not a nickname).
               coalesce(n.formal, [nullif({given}, '')]) AS given_formal,
               nullif({family}, '') AS family,
               -- Each part of a double-barrelled surname, so "Smith-Jones" meets "Smith".
               list_filter(regexp_split_to_array(upper(strip_accents(s.family_name)), '[^A-Z]+'),
                           lambda p: length(p) > 1) AS family_parts,
               strftime(s.date_of_birth, '%Y-%m-%d') AS dob,
               s.postcode, replace(s.postcode, ' ', '') AS postcode_compact,
               {parts},
               nullif(s.sex, 'U') AS sex, s.nhs_key, s.upn_key
        FROM {source} s LEFT JOIN formal_names n ON n.name = {given}
    """


def register_features(con: Any, source: str, name: str) -> None:
    """Create table ``name`` of features over ``source`` in DuckDB connection ``con``."""
    from childindex.linkage.nicknames import formal_names_table

    con.register("formal_names", formal_names_table())
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {features_sql(source)}")
