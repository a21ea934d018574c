"""SQL building blocks shared by the row rules, the custom GX expectations and staging.

Every check is written once here, as DuckDB SQL, and used by both engines: the row rules
(:mod:`childindex.validation.rules`) run it in DuckDB, and GX's SQL engine runs the very same
text through the custom expectations (:mod:`childindex.validation.gx.custom`), so the two
agree by construction.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from childindex.whitelist import IDENTITY_FIELDS, NAME_AND_BIRTH_FIELDS

if TYPE_CHECKING:
    from childindex.contracts.contract import ColumnSpec, Contract

STD = "std_"  # standardised fields' prefix (contracts' own names never start with it)
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
BLANK = " \t\r\n\u00a0"  # what trimming removes: a value of only these is blank

# Fields every standardised table has (NULL when the contract lacks them): GX's suite and
# staging name them all.
ALWAYS_STANDARDISED = ("local_id", "nhs_number", "upn", "involvement_start", "involvement_end", "sensitive")

# A helper column of every standardised table (never staged): how much the row says about who
# the child is, one of IDENTITY_CLASSES (see identity_class_sql). GX's too_little_identity
# expectation checks it; the row rule computes the same from the fields themselves.
IDENTITY_CLASS = STD + "identity"
IDENTITY_CLASSES = (
    "complete",  # no identity field blank
    "identifier",  # some blank, but a valid NHS number or UPN
    "partial",  # some blank, no identifier, at most one of given name, family name, date of birth blank
    "short",  # no identifier and two or more of given name, family name, date of birth blank
)


def standardise_sql(contract: Contract, source: str = "raw") -> str:
    """SELECT over ``source`` (the file's columns as text, plus ``_row``): the file's
    columns trimmed (NULL when blank) beside ``std_<field>`` for every whitelisted field,
    and the row's identity class (:data:`IDENTITY_CLASS`).

    Row-local only, so it runs batch by batch while the file streams in. Its parameters
    come from :func:`standardise_params`."""
    fields: dict[str, str] = {}
    for col in contract.columns:
        raw = quote_ident(col.name)  # already trimmed and NULL when blank, by the inner SELECT
        if col.type == "date":
            parsed = f"CAST(try_strptime({raw}, $date_format) AS DATE)"
            expr = f"CASE WHEN regexp_full_match({raw}, $date_pattern) THEN {parsed} END"
        elif col.field == "sex":
            expr = f"list_extract($sex_values, list_position($sex_codes, {raw}))"
        elif col.field == "service":
            expr = f"CASE WHEN list_contains($services, {raw}) THEN {raw} END"
        elif col.field == "sensitive":
            expr = f"list_extract($sensitive_values, list_position($sensitive_codes, {raw}))"
        elif col.field == "postcode":
            expr = postcode_sql(raw)
        elif col.format in ("nhs_number", "upn"):
            expr = f"upper(replace({raw}, ' ', ''))"
        elif col.field in ("given_name", "family_name"):
            # Collapse runs of spaces; the regex only runs where there is one to collapse.
            expr = f"CASE WHEN contains({raw}, '  ') THEN regexp_replace({raw}, ' +', ' ', 'g') ELSE {raw} END"
        else:
            expr = raw
        fields[STD + col.field] = expr
    for field in ALWAYS_STANDARDISED:
        fields.setdefault(STD + field, "NULL")
    names = [quote_ident(c) for c in contract.column_names]
    cleaned = ", ".join(f"NULLIF(trim({c}, $blank), '') AS {c}" for c in names)
    select = ",\n  ".join(["_row", *names, *(f"{expr} AS {name}" for name, expr in fields.items())])
    # The identity class reads the standardised identifiers: one more level, row-local too.
    return (
        f"SELECT *, {identity_class_sql(contract)} AS {IDENTITY_CLASS} FROM (\n"
        f"SELECT\n  {select}\nFROM (SELECT _row, {cleaned} FROM {source}))"
    )


def standardise_params(contract: Contract) -> dict[str, Any]:
    """The bound parameters of :func:`standardise_sql`: the contract's codes and formats."""
    params: dict[str, Any] = {
        "date_format": contract.date_format,
        "sex_codes": list(contract.sex_codes),
        "sex_values": list(contract.sex_codes.values()),
        "services": list(contract.services),
        "blank": BLANK,
        "date_pattern": date_pattern(contract.date_format),
    }
    if contract.sensitive_codes:  # DuckDB refuses parameters a statement does not use
        params["sensitive_codes"] = list(contract.sensitive_codes)
        params["sensitive_values"] = list(contract.sensitive_codes.values())
    return params


# --------------------------------------------------------------------------- identity


def identity_blank_sql(contract: Contract, fields: tuple[str, ...]) -> list[str]:
    """One predicate per field, over a standardised row: true when the file's column for it
    was blank, or (under a ``missing_identity`` that allows blanks) held a value set aside
    as unusable (:func:`identity_unusable_sql`), or the contract has no such column."""
    blanks = []
    for field in fields:
        col = contract.column_for(field)
        if col is None:
            blanks.append("true")
        elif contract.blank_allowed(col) and (unusable := identity_unusable_sql(col)) is not None:
            blanks.append(f"({quote_ident(col.name)} IS NULL OR {unusable})")
        else:
            blanks.append(f"{quote_ident(col.name)} IS NULL")
    return blanks


def identity_unusable_sql(col: ColumnSpec) -> str | None:
    """True when an identity column holds a value its format rule refuses (a date that is
    not one, a sex code outside the contract's list, a postcode that is not a full UK
    postcode); None for fields with no format rule (names). Under ``missing_identity``
    ``with_identifier`` or ``stage`` such a value is set aside: the row is judged as if
    the field were blank and staged without it."""
    std = STD + col.field
    if col.type == "date" or col.field == "sex":
        return f"{std} IS NULL"  # standardisation leaves NULL where the value did not parse
    if col.format == "postcode":
        return f"NOT {postcode_valid_sql(std)}"
    return None


def has_identifier_sql(contract: Contract) -> str:
    """True when the row carries a valid NHS number or UPN (present and passing its check),
    among the identifiers the contract maps."""
    checks = [
        nhs_valid_sql(STD + col.field) if col.format == "nhs_number" else upn_valid_sql(STD + col.field)
        for col in contract.columns
        if col.format in ("nhs_number", "upn")
    ]
    return "(" + " OR ".join(checks) + ")" if checks else "false"


def identity_class_sql(contract: Contract) -> str:
    """The row's :data:`IDENTITY_CLASSES` entry, over a standardised row. The identifier
    checks run only for rows with a blank (CASE evaluates a branch for the rows reaching it)."""
    any_blank = " OR ".join(identity_blank_sql(contract, IDENTITY_FIELDS))
    core = " + ".join(f"CAST({b} AS INTEGER)" for b in identity_blank_sql(contract, NAME_AND_BIRTH_FIELDS))
    return (
        f"CASE WHEN NOT ({any_blank}) THEN 'complete' WHEN {has_identifier_sql(contract)} THEN 'identifier' "
        f"WHEN {core} <= 1 THEN 'partial' ELSE 'short' END"
    )


# --------------------------------------------------------------------------- checks


def nhs_valid_sql(col: str) -> str:
    """True when ``col`` is 10 digits with a correct modulus 11 check digit."""
    weighted = " + ".join(f"{11 - i}*TRY_CAST(substr({col},{i},1) AS INTEGER)" for i in range(1, 10))
    check = f"(11 - (({weighted}) % 11)) % 11"
    # DuckDB does not short-circuit AND: TRY_CAST keeps non-digits from raising, and
    # coalesce turns the resulting NULL into "invalid".
    return (
        f"coalesce(regexp_full_match({col}, '[0-9]{{10}}') AND "
        f"{check} <> 10 AND {check} = TRY_CAST(substr({col},10,1) AS INTEGER), false)"
    )


def upn_valid_sql(col: str) -> str:
    """True when ``col`` is a 13-character UPN whose first letter is the DfE check letter."""
    weighted = " + ".join(f"{i}*TRY_CAST(substr({col},{i},1) AS INTEGER)" for i in range(2, 14))
    return (
        f"coalesce(regexp_full_match({col}, '[A-Z][0-9]{{12}}') AND "
        f"substr('{UPN_LETTERS}', (({weighted}) % 23) + 1, 1) = substr({col},1,1), false)"
    )


def postcode_valid_sql(col: str) -> str:
    """True when ``col`` is a full UK postcode in its standard form (see :func:`postcode_sql`)."""
    return f"coalesce(regexp_full_match({col}, '{POSTCODE_RE[1:-1]}'), false)"


def date_pattern(date_format: str) -> str:
    """A regex with the shape of a strftime format: %Y is four digits, so "19/07/13" does
    not pass as the year 13 (strptime alone would take it)."""
    parts = {
        "%Y": "[0-9]{4}",
        "%m": "[0-9]{1,2}",
        "%d": "[0-9]{1,2}",
        "%b": "[A-Za-z]{3}",
        "%H": "[0-9]{2}",
        "%M": "[0-9]{2}",
        "%S": "[0-9]{2}",
    }
    out, i = [], 0
    while i < len(date_format):
        token = date_format[i : i + 2]
        if token in parts:
            out.append(parts[token])
            i += 2
        else:
            out.append(re.escape(date_format[i]))
            i += 1
    return "".join(out)


def date_valid_sql(col: str, date_format: str) -> str:
    """True when ``col`` has the shape of ``date_format`` and parses as a date in it."""
    fmt = date_format.replace("'", "''")
    pattern = date_pattern(date_format).replace("'", "''")
    return f"(regexp_full_match({col}, '{pattern}') AND try_strptime({col}, '{fmt}') IS NOT NULL)"


# --------------------------------------------------------------------------- normal forms


def normalise_name_sql(col: str) -> str:
    """Upper case letters only, accents stripped: the form exact matching compares."""
    return f"regexp_replace(upper(strip_accents({col})), '[^A-Z]', '', 'g')"


def postcode_sql(col: str) -> str:
    """Upper case, inner space restored before the last three characters."""
    # A lambda binds the squashed form once instead of recomputing it five times.
    return (
        f"list_transform([upper(replace({col}, ' ', ''))], lambda p: CASE WHEN length(p) BETWEEN 5 AND 7 "
        f"THEN substr(p, 1, length(p) - 3) || ' ' || substr(p, -3) ELSE p END)[1]"
    )


# --------------------------------------------------------------------------- quoting


def quote_ident(name: str) -> str:
    """A column name as a SQL identifier: senders' names may hold spaces and quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(text: object) -> str:
    """A SQL string literal's body (quotes doubled), for what cannot be a bound parameter:
    the paths in COPY and read_parquet."""
    return str(text).replace("'", "''")
