"""Which pairs a run compares: the fixed rules, plus looser ones where the data is small
enough to afford them.

The fixed rules (:func:`blocking_rules`) pair two fields, so they
stay affordable for a million children. Heavily corrupted records (a date of birth and a
surname both mistyped, names in each other's fields) meet none of them, yet a single
field would bring them together. Such a rule, one field equal (or one name keyed into
the other name's field), is used in a run only while the pairs it adds stay within
``LOOSE_PAIRS_PER_RECORD`` per record being linked: always for an organisation's first
few thousand records, never for a birthday among a million children. Counted in SQL
before anything is scored, so an unaffordable rule costs one GROUP BY.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (left column, right column): pairs with l.left = r.right. Cross-field rules come in both
# directions, since Splink orders each pair by id.
LOOSE_RULES: tuple[tuple[str, str], ...] = (
    ("dob", "dob"),
    ("postcode", "postcode"),
    ("family", "family"),
    ("given", "given"),
    ("given", "family"),
    ("family", "given"),
)
LOOSE_PAIRS_PER_RECORD = 50


def rule_sql(left: str, right: str) -> str:
    return f"l.{left} = r.{right}"


def loose_pairs(con: Any, new: str, old: str | None, left: str, right: str) -> int:
    """Pairs ``l.left = r.right`` among the records of ``new`` and between ``new`` and ``old``
    (an upper bound: a pair another rule already compares is counted too)."""

    def paired(a_table: str, a_col: str, b_table: str, b_col: str, same: bool) -> int:
        counts = "SELECT {c} AS v, count(*) AS n FROM {t} WHERE {c} IS NOT NULL GROUP BY 1"
        product = "a.n * (a.n - 1) / 2" if same else "a.n * b.n"
        sql = (
            f"SELECT coalesce(sum({product}), 0) FROM ({counts.format(c=a_col, t=a_table)}) a "
            f"JOIN ({counts.format(c=b_col, t=b_table)}) b USING (v)"
        )
        return int(con.execute(sql).fetchall()[0][0])

    # Within tonight's records a pair is counted once; a cross-field rule sees it from both sides.
    total = paired(new, left, new, right, left == right) // (1 if left == right else 2)
    if old is not None:
        total += paired(new, left, old, right, False)
        if left != right:
            total += paired(old, left, new, right, False)
    return total


def affordable_loose_rules(con: Any, new: str, old: str | None = None) -> list[str]:
    """The loose rules (as SQL) this run can afford, cheapest first."""
    records = con.execute(f"SELECT count(*) FROM {new}").fetchall()[0][0]
    budget = LOOSE_PAIRS_PER_RECORD * max(records, 1)
    priced = [(loose_pairs(con, new, old, a, b), a, b) for a, b in LOOSE_RULES]
    chosen, spent = [], 0
    for pairs, a, b in sorted(priced):
        if spent + pairs > budget:
            break
        chosen.append(rule_sql(a, b))
        spent += pairs
    return chosen


@dataclass(frozen=True)
class FixedRule:
    """A fixed blocking rule: pairs whose ``left`` expressions (SQL over the features) equal
    the other record's ``right`` ones, the same as ``left`` unless the rule crosses fields."""

    name: str  # for metric names and logs
    fields: str  # what the records share, in words, for receipts and reports (never a value)
    left: tuple[str, ...]
    right: tuple[str, ...] | None = None

    @property
    def other(self) -> tuple[str, ...]:
        return self.right or self.left


# Chosen so that >= 99.5% of true pairs meet at least one rule (measured by
# :func:`childindex.linkage.quality.blocking_recall`).
FIXED_RULES: tuple[FixedRule, ...] = (
    FixedRule("nhs_number", "NHS number", ("nhs_key",)),
    FixedRule("upn", "UPN", ("upn_key",)),
    FixedRule("names", "given name and family name", ("given", "family")),
    FixedRule("family_postcode", "family name and postcode", ("family", "postcode")),
    FixedRule("given_postcode", "given name and postcode", ("given", "postcode")),
    # A birthday alone makes blocks too large at national scale (a million children
    # share about 6,600 birthdays): pair it with an initial or the postcode district.
    FixedRule("dob_family_initial", "date of birth and family name initial", ("dob", "substr(family, 1, 1)")),
    FixedRule("dob_given_initial", "date of birth and given name initial", ("dob", "substr(given, 1, 1)")),
    FixedRule("dob_postcode_start", "date of birth and start of postcode", ("dob", "substr(postcode, 1, 3)")),
    FixedRule(
        "birth_year_names",
        "year of birth, formal given name and start of family name",
        ("substr(dob, 1, 4)", "given_formal[1]", "substr(family, 1, 2)"),
    ),
    # Names keyed into each other's fields.
    FixedRule("names_swapped", "given name and family name, swapped", ("given", "family"), ("family", "given")),
)


def blocking_rules() -> list[Any]:
    """The fixed rules as Splink's blocking rules."""
    from splink import block_on
    from splink.blocking_rule_library import CustomRule

    return [
        block_on(*rule.left)
        if rule.right is None
        else CustomRule(" AND ".join(f"l.{a} = r.{b}" for a, b in zip(rule.left, rule.right, strict=True)))
        for rule in FIXED_RULES
    ]


def rules_for_run(con: Any, new: str, old: str | None = None) -> list[dict[str, str]]:
    """The fixed rules plus the affordable loose ones, in the form of Splink's settings."""
    fixed = [rule.get_blocking_rule("duckdb").as_dict() for rule in blocking_rules()]
    loose = [{"blocking_rule": sql, "sql_dialect": "duckdb"} for sql in affordable_loose_rules(con, new, old)]
    return fixed + loose
