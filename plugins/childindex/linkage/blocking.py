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


def blocking_rules() -> list[Any]:
    """Pairs worth scoring. Chosen so that >= 99.5% of true pairs meet at least one rule
    (measured by :func:`childindex.linkage.quality.blocking_recall`)."""
    from splink import block_on
    from splink.blocking_rule_library import CustomRule

    return [
        block_on("nhs_key"),
        block_on("upn_key"),
        block_on("given", "family"),
        block_on("family", "postcode"),
        block_on("given", "postcode"),
        # A birthday alone makes blocks too large at national scale (a million children
        # share about 6,600 birthdays): pair it with an initial or the postcode district.
        block_on("dob", "substr(family, 1, 1)"),
        block_on("dob", "substr(given, 1, 1)"),
        block_on("dob", "substr(postcode, 1, 3)"),
        block_on("substr(dob, 1, 4)", "given_formal[1]", "substr(family, 1, 2)"),
        # Names keyed into each other's fields.
        CustomRule("l.given = r.family AND l.family = r.given"),
    ]


def rules_for_run(con: Any, new: str, old: str | None = None) -> list[dict[str, str]]:
    """The fixed rules plus the affordable loose ones, in the form of Splink's settings."""
    fixed = [rule.get_blocking_rule("duckdb").as_dict() for rule in blocking_rules()]
    loose = [{"blocking_rule": sql, "sql_dialect": "duckdb"} for sql in affordable_loose_rules(con, new, old)]
    return fixed + loose
