"""Measures of linkage quality that need ground truth: blocking recall.

Only for synthetic data (the generator's truth) or a labelled sample: how many true pairs
at least one blocking rule brings together. A pair no rule compares can never be linked,
so this bounds recall; the issue asks for at least 99.5%.
"""

from __future__ import annotations

from typing import Any


def rule_sql(rule: Any) -> str:
    """A rule's SQL: a Splink blocking rule, or one as Splink's settings hold it."""
    if isinstance(rule, dict):
        return rule["blocking_rule"]
    return rule.get_blocking_rule("duckdb").blocking_rule_sql


def blocking_recall(con: Any, features: str, true_pairs: str, rules: list[Any] | None = None) -> dict[str, Any]:
    """Share of ``true_pairs`` (table of unique_id pairs ``l``, ``r``) that the blocking
    rules compare, overall and rule by rule, over the features table ``features``. The
    rules by default: those a run over ``features`` uses (the fixed ones, and the loose
    ones it affords)."""
    from childindex.linkage.blocking import rules_for_run

    rules = rules if rules is not None else rules_for_run(con, features)
    conditions = [rule_sql(r) for r in rules]
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in conditions)
    row = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE {" OR ".join(f"({c})" for c in conditions)}), {counts}
        FROM {true_pairs} p JOIN {features} l ON l.unique_id = p.l JOIN {features} r ON r.unique_id = p.r
    """).fetchall()[0]
    total, caught = row[0], row[1]
    return {
        "true_pairs": total,
        "compared": caught,
        "recall": caught / total if total else 1.0,
        "by_rule": dict(zip(conditions, row[2:], strict=True)),
    }
