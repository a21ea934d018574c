"""The rule catalogue: every row rule defined once, for DuckDB and for Great Expectations.

Each :class:`RuleDef` says where a rule applies (which contract columns), the SQL predicate
over table ``std`` that is true when a row breaks it, and the GX expectation (type and
kwargs) that counts the same rows. From this one list come both the SQL rules intake runs
(:func:`row_rules`, whose failures fill a receipt) and the GX suite
(:func:`expectation_configs`, wrapped by :func:`childindex.validation.gx.suites.build_suite`),
in the same order, with the same (rule, column) in each expectation's ``meta``.

To add a rule: add a :class:`RuleDef` to :data:`CATALOGUE` at the place its receipts should
list it, give it an ADVICE line in :mod:`childindex.receipts`, and regenerate the suites
(``childindex contracts suites``; tests compare ``expectations/*.json`` with the catalogue).
A check GX has no built-in expectation for gets its SQL in :mod:`childindex.validation.sql`
and a custom expectation in :mod:`childindex.validation.gx.custom` that runs that SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from childindex.contracts.contract import ColumnSpec, Contract
from childindex.contracts.describe import date_in_words, delimiter_name
from childindex.validation.sql import (
    IDENTITY_CLASS,
    STD,
    has_identifier_sql,
    identity_blank_sql,
    nhs_valid_sql,
    postcode_valid_sql,
    quote_ident,
    upn_valid_sql,
)
from childindex.whitelist import IDENTITY_FIELDS, MAX_LENGTH, NAME_AND_BIRTH_FIELDS

MAX_AGE_YEARS = 25  # a child's date of birth lies at most this far before the night

# What the predicates read besides ``std``: local ids sent more than once.
DUPLICATED_IDS_SQL = (
    f"CREATE TABLE duplicated_ids AS SELECT {STD}local_id AS id FROM std "
    f"WHERE {STD}local_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
)


@dataclass(frozen=True)
class Rule:
    """A rule applied to one of a contract's columns, as the SQL engine runs it."""

    column: str  # the file's column name, as shown in receipts
    rule: str
    predicate: str  # SQL over table std, true when the row FAILS
    # A failure sets the value aside instead of rejecting the row (see RuleDef.sets_aside).
    sets_aside: bool = False
    expects: str = ""  # what the contract expects, in words (receipts' summary; never a value)


@dataclass(frozen=True)
class RuleDef:
    """One rule of the catalogue, in both engines' terms.

    ``applies``, ``fails`` and ``kwargs`` take the contract and one of its columns. A rule
    ``across_columns`` is listed after every single-column rule; ``applies`` then picks the
    one column receipts name it by, or the one it is applied at when ``names`` gives the
    name receipts use instead (``"*"``: a rule about the whole row).
    """

    name: str
    applies: Callable[[Contract, ColumnSpec], bool]
    fails: Callable[[Contract, ColumnSpec], str]  # SQL over std ($night bound), true when the row breaks it
    expectation: str  # the GX expectation type counting the same rows
    kwargs: Callable[[Contract, ColumnSpec], dict[str, Any]]
    across_columns: bool = False
    # The column receipts name the rule by, when not the one it applies to: "*" for the whole row.
    names: str | None = None
    # True where a failure sets the value aside rather than rejecting the row: a malformed
    # identity value where the contract's missing_identity allows that field blank. The row
    # is then judged as if the field were blank (too_little_identity) and staged without it.
    sets_aside: Callable[[Contract, ColumnSpec], bool] = lambda c, col: False
    # What the contract expects, in words: receipts and the contract pages say it from here.
    expects: Callable[[Contract, ColumnSpec], str] = lambda c, col: ""

    def column(self, col: ColumnSpec) -> str:
        return self.names or col.name


def row_rules(contract: Contract) -> list[Rule]:
    """Every row-level rule for a contract, in the order receipts list them."""
    return [
        Rule(d.column(col), d.name, d.fails(contract, col), d.sets_aside(contract, col), d.expects(contract, col))
        for d, col in applied(contract)
    ]


def field_count_expects(contract: Contract) -> str:
    """What a row that the parser could not split (rule ``field_count``) should have been."""
    return (
        f"one record per line, with as many fields as the header, separated by "
        f"{delimiter_name(contract.file.delimiter, plural=True)} (a value holding the delimiter in double quotes)"
    )


def expectation_configs(contract: Contract) -> list[dict[str, Any]]:
    """The GX expectations of a contract (JSON-able), one per rule in :func:`row_rules`' order."""
    return [
        {"type": d.expectation, "kwargs": d.kwargs(contract, col), "meta": {"rule": d.name, "column": d.column(col)}}
        for d, col in applied(contract)
    ]


def applied(contract: Contract) -> list[tuple[RuleDef, ColumnSpec]]:
    """(rule, column) for every rule that applies: column by column in the catalogue's order,
    then the rules across columns."""
    single = [d for d in CATALOGUE if not d.across_columns]
    across = [d for d in CATALOGUE if d.across_columns]
    pairs = [(d, col) for col in contract.columns for d in single if d.applies(contract, col)]
    return pairs + [(d, col) for d in across for col in contract.columns if d.applies(contract, col)]


def sql_params(night: date) -> dict[str, Any]:
    """The parameters the predicates bind."""
    return {"night": night}


def gx_params(night: date) -> dict[str, Any]:
    """The expectation parameters the suite names (``$PARAMETER``)."""
    return {"night": night, "min_date_of_birth": _years_before(night, MAX_AGE_YEARS)}


# --------------------------------------------------------------------------- the catalogue


def _raw(col: ColumnSpec) -> str:
    """The file's column as sent (trimmed, NULL when blank)."""
    return quote_ident(col.name)


def _std(col: ColumnSpec) -> str:
    """The column's standardised field."""
    return STD + col.field


def _codes(contract: Contract, col: ColumnSpec) -> list[str]:
    codes = {"sex": contract.sex_codes, "service": contract.services, "sensitive": contract.sensitive_codes}
    return sorted(codes[col.field])


SEX_WORDS = {"M": "male", "F": "female", "U": "not known"}


def _codes_in_words(contract: Contract, col: ColumnSpec) -> str:
    if col.field == "sex":
        listed = [f"{k} ({SEX_WORDS[v]})" for k, v in contract.sex_codes.items()]
    elif col.field == "sensitive":
        listed = [f"{k} ({'sensitive' if v else 'not sensitive'})" for k, v in contract.sensitive_codes.items()]
    else:
        listed = list(contract.services)
    return "one of " + ", ".join(listed)


def _identity_in_words(contract: Contract) -> str:
    """What a row must say about who the child is, under the contract's missing_identity."""
    fields = IDENTITY_FIELDS if contract.missing_identity == "with_identifier" else NAME_AND_BIRTH_FIELDS
    names = ", ".join(c.name for f in fields if (c := contract.column_for(f)) is not None)
    ids = " or ".join(c.name for c in contract.columns if c.format in ("nhs_number", "upn")) or "identifier"
    blanks = "none of" if contract.missing_identity == "with_identifier" else "at most one of"
    return f"{blanks} {names} blank, unless the row has a valid {ids}"


def _too_little_identity(contract: Contract) -> str:
    """True when the row's blank identity fields are more than the contract's
    ``missing_identity`` allows: computed from the fields, not from the identity class GX
    checks. The identifier checks run only for rows with a blank."""
    if contract.missing_identity == "with_identifier":
        blank = " OR ".join(identity_blank_sql(contract, IDENTITY_FIELDS))
    else:  # stage: two or more of given name, family name, date of birth
        blank = " + ".join(f"CAST({b} AS INTEGER)" for b in identity_blank_sql(contract, NAME_AND_BIRTH_FIELDS))
        blank += " >= 2"
    return f"CASE WHEN {blank} THEN NOT {has_identifier_sql(contract)} ELSE false END"


def _identity_classes_allowed(contract: Contract) -> list[str]:
    allowed = {"with_identifier": ("complete", "identifier"), "stage": ("complete", "identifier", "partial")}
    return list(allowed[contract.missing_identity])


# Expectations name the file's raw column where a rule is about what was sent (required,
# codes, date formats) and the standardised field where it is about meaning (identifier
# checks, postcode, date ranges, uniqueness).
CATALOGUE: tuple[RuleDef, ...] = (
    RuleDef(
        # An identity field may be blank under the contract's missing_identity option: then
        # too_little_identity decides about the row instead.
        "required",
        applies=lambda c, col: col.required and not c.blank_allowed(col),
        fails=lambda c, col: f"{_raw(col)} IS NULL",
        expectation="expect_column_values_to_not_be_null",
        kwargs=lambda c, col: {"column": col.name},
        expects=lambda c, col: "a value: the column may not be blank",
    ),
    RuleDef(
        "max_length",
        applies=lambda c, col: col.field in MAX_LENGTH,
        fails=lambda c, col: f"length({_raw(col)}) > {MAX_LENGTH[col.field]}",
        expectation="expect_column_value_lengths_to_be_between",
        kwargs=lambda c, col: {"column": col.name, "max_value": MAX_LENGTH[col.field]},
        expects=lambda c, col: f"at most {MAX_LENGTH[col.field]} characters",
    ),
    RuleDef(
        "date_format",
        applies=lambda c, col: col.type == "date",
        fails=lambda c, col: f"{_raw(col)} IS NOT NULL AND {_std(col)} IS NULL",
        expectation="expect_column_values_to_match_date_format",
        kwargs=lambda c, col: {"column": col.name, "date_format": c.date_format},
        sets_aside=lambda c, col: c.blank_allowed(col),
        expects=lambda c, col: date_in_words(c.date_format),
    ),
    RuleDef(
        "date_of_birth_range",
        applies=lambda c, col: col.field == "date_of_birth",
        fails=lambda c, col: f"{_std(col)} > $night OR {_std(col)} < $night - INTERVAL {MAX_AGE_YEARS} YEAR",
        expectation="expect_column_values_to_be_between",
        kwargs=lambda c, col: {
            "column": _std(col),
            "min_value": {"$PARAMETER": "min_date_of_birth"},
            "max_value": {"$PARAMETER": "night"},
        },
        expects=lambda c, col: (
            f"a date of birth on or before the night of the extract and at most {MAX_AGE_YEARS} "
            f"years before it (ages 0 to {MAX_AGE_YEARS})"
        ),
    ),
    RuleDef(
        "code_set",
        applies=lambda c, col: col.field in ("sex", "service", "sensitive"),
        fails=lambda c, col: f"{_raw(col)} IS NOT NULL AND {_std(col)} IS NULL",
        expectation="expect_column_values_to_be_in_set",
        kwargs=lambda c, col: {"column": col.name, "value_set": _codes(c, col)},
        sets_aside=lambda c, col: c.blank_allowed(col),
        expects=_codes_in_words,
    ),
    RuleDef(
        "nhs_number_check",
        applies=lambda c, col: col.format == "nhs_number",
        fails=lambda c, col: f"{_raw(col)} IS NOT NULL AND NOT {nhs_valid_sql(_std(col))}",
        expectation="expect_column_values_to_be_valid_nhs_number",  # gx.custom
        kwargs=lambda c, col: {"column": _std(col)},
        expects=lambda c, col: (
            "a 10-digit NHS number whose last digit is its modulus 11 check digit (spaces allowed), or a blank"
        ),
    ),
    RuleDef(
        "upn_check",
        applies=lambda c, col: col.format == "upn",
        fails=lambda c, col: f"{_raw(col)} IS NOT NULL AND NOT {upn_valid_sql(_std(col))}",
        expectation="expect_column_values_to_be_valid_upn",  # gx.custom
        kwargs=lambda c, col: {"column": _std(col)},
        expects=lambda c, col: "a 13-character UPN: its DfE check letter, then 12 digits; or a blank",
    ),
    RuleDef(
        "postcode_format",
        applies=lambda c, col: col.format == "postcode",
        fails=lambda c, col: f"{_raw(col)} IS NOT NULL AND NOT {postcode_valid_sql(_std(col))}",
        expectation="expect_column_values_to_be_valid_postcode",  # gx.custom
        kwargs=lambda c, col: {"column": _std(col)},
        sets_aside=lambda c, col: c.blank_allowed(col),
        expects=lambda c, col: "a full UK postcode, like SW1A 1AA (spacing and case do not matter)",
    ),
    RuleDef(
        # Every row sharing an id is rejected: which of them is right cannot be known.
        "duplicate_local_id",
        applies=lambda c, col: col.field == "local_id",
        fails=lambda c, col: f"{_std(col)} IN (SELECT id FROM duplicated_ids)",
        expectation="expect_column_values_to_be_unique",
        kwargs=lambda c, col: {"column": _std(col)},
        expects=lambda c, col: "each record id once in the file",
    ),
    RuleDef(
        # A row with blank identity fields, more than the contract's missing_identity allows
        # (not applied under "reject": the required rule rejects each blank). One per row,
        # named "*"; applied once, at the local id's column.
        "too_little_identity",
        applies=lambda c, col: c.missing_identity != "reject" and col.field == "local_id",
        fails=lambda c, col: _too_little_identity(c),
        expectation="expect_column_values_to_be_in_set",
        kwargs=lambda c, col: {"column": IDENTITY_CLASS, "value_set": _identity_classes_allowed(c)},
        across_columns=True,
        names="*",
        expects=lambda c, col: _identity_in_words(c),
    ),
    RuleDef(
        "date_order",
        applies=lambda c, col: col.field == "involvement_start" and c.column_for("involvement_end") is not None,
        fails=lambda c, col: f"{STD}involvement_start > {STD}involvement_end",
        expectation="expect_column_pair_values_a_to_be_greater_than_b",
        kwargs=lambda c, col: {
            "column_A": STD + "involvement_end",
            "column_B": STD + "involvement_start",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
        across_columns=True,
        expects=lambda c, col: f"{col.name} on or before {_end_name(c)}",
    ),
)


def _end_name(contract: Contract) -> str:
    end = contract.column_for("involvement_end")
    return end.name if end else "the end date"


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
