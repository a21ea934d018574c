"""Schema-level validation of an extract, as DuckDB set operations.

Each rule is a SQL predicate over the raw (all-text) columns and their standardised
forms; the failing (row, column, rule) triples are computed in one query, so a file of
millions of rows is checked without a Python loop over rows. Rules name columns and rules,
never values. Great Expectations suites deepen this in a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from childindex.contracts import Contract

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
MAX_AGE_YEARS = 25


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


def normalise_name_sql(col: str) -> str:
    """Upper case letters only, accents stripped: the form exact matching compares."""
    return f"regexp_replace(upper(strip_accents({col})), '[^A-Z]', '', 'g')"


def postcode_sql(col: str) -> str:
    """Upper case, inner space restored before the last three characters."""
    squashed = f"upper(regexp_replace({col}, '\\s', '', 'g'))"
    return (
        f"CASE WHEN length({squashed}) BETWEEN 5 AND 7 THEN "
        f"substr({squashed}, 1, length({squashed}) - 3) || ' ' || substr({squashed}, -3) "
        f"ELSE {squashed} END"
    )


@dataclass(frozen=True)
class Rule:
    column: str  # the agency's column name, as shown in receipts
    rule: str
    predicate: str  # SQL, true when the row FAILS


def row_rules(contract: Contract) -> list[Rule]:
    """Every row-level rule for a contract, in the order receipts list them."""
    rules: list[Rule] = []
    for col in contract.columns:
        raw = f'r."{col.name}"'
        std = f"s.{col.field}"
        if col.required:
            rules.append(Rule(col.name, "required", f"{raw} IS NULL"))
        if col.type == "date":
            rules.append(Rule(col.name, "date_format", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.field == "date_of_birth":
            rules.append(
                Rule(
                    col.name, "date_of_birth_range", f"{std} > $night OR {std} < $night - INTERVAL {MAX_AGE_YEARS} YEAR"
                )
            )
        if col.field in ("sex", "service"):
            rules.append(Rule(col.name, "code_set", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.format == "nhs_number":
            rules.append(Rule(col.name, "nhs_number_check", f"{raw} IS NOT NULL AND NOT {nhs_valid_sql(std)}"))
        if col.format == "upn":
            rules.append(Rule(col.name, "upn_check", f"{raw} IS NOT NULL AND NOT {upn_valid_sql(std)}"))
        if col.format == "postcode":
            rules.append(
                Rule(
                    col.name,
                    "postcode_format",
                    f"{raw} IS NOT NULL AND NOT regexp_full_match({std}, '{POSTCODE_RE[1:-1]}')",
                )
            )
        if col.field == "local_id":
            # Every row sharing an id is rejected: which of them is right cannot be known.
            rules.append(Rule(col.name, "duplicate_local_id", "s._dup_count > 1"))
    start, end = contract.column_for("involvement_start"), contract.column_for("involvement_end")
    if start and end:
        rules.append(Rule(start.name, "date_order", "s.involvement_start > s.involvement_end"))
    return rules


def standardise_sql(contract: Contract) -> str:
    """SELECT turning the raw text columns into the whitelisted fields (one row per row).

    Reads relation ``raw`` (columns named as the contract, plus ``_row``), and the small
    tables ``sex_codes(code, sex)`` and ``services(service)``. Unmapped fields are NULL.
    """
    fmt = "$date_format"
    exprs = {"_row": "r._row"}
    for col in contract.columns:
        raw = f'trim(r."{col.name}")'
        if col.type == "date":
            expr = f"CAST(try_strptime({raw}, {fmt}) AS DATE)"
        elif col.field == "sex":
            expr = f"(SELECT sc.sex FROM sex_codes sc WHERE sc.code = {raw})"
        elif col.field == "service":
            expr = f"(SELECT sv.service FROM services sv WHERE sv.service = {raw})"
        elif col.field == "postcode":
            expr = postcode_sql(raw)
        elif col.format in ("nhs_number", "upn"):
            expr = f"upper(regexp_replace({raw}, '\\s', '', 'g'))"
        elif col.field in ("given_name", "family_name"):
            expr = f"regexp_replace({raw}, '\\s+', ' ', 'g')"
        else:
            expr = raw
        exprs[col.field] = expr
    local = contract.column_for("local_id")
    assert local is not None
    exprs["_dup_count"] = (
        f'CASE WHEN r."{local.name}" IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY trim(r."{local.name}")) END'
    )
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    return f"SELECT\n  {select}\nFROM raw r"
