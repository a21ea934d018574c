"""The retention policy: every rule, what it is for, how long, what it deletes.

``policy.yaml`` beside this module is the one place that states the rules and their default
periods; the settings read it once per process (:func:`childindex.settings.retention_policy`),
for their defaults and for this module. ``docs/retention.md`` is generated from it
(``childindex retention --policy``; a test compares).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from childindex.settings import RetentionSettings, retention_policy


@dataclass(frozen=True)
class Rule:
    """One entry of policy.yaml."""

    name: str
    kind: str  # rows | files | airflow
    setting: str | None  # RetentionSettings field holding the period, if it can be changed
    period_days: int  # the default period
    purpose: str
    deletes: tuple[str, ...]

    def period(self, periods: RetentionSettings) -> int:
        """This rule's period in days under ``periods`` (the fixed period when no setting)."""
        return int(getattr(periods, self.setting)) if self.setting else self.period_days


@cache
def policy() -> tuple[Rule, ...]:
    """The retention rules, in the order they run."""
    return tuple(
        Rule(
            name=r["name"],
            kind=r["kind"],
            setting=r.get("setting"),
            period_days=int(r["period_days"]),
            purpose=" ".join(r["purpose"].split()),
            deletes=tuple(r["deletes"]),
        )
        for r in retention_policy()
    )


def policy_markdown(periods: RetentionSettings | None = None) -> str:
    """The policy as a Markdown table, with ``periods`` (the retention settings) in force."""
    lines = [
        "| rule | deletes | after (days) | setting | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in policy():
        days = r.period(periods) if periods is not None else r.period_days
        setting = f"`CHILDINDEX_RETENTION__{r.setting.upper()}`" if r.setting else "fixed"
        lines.append(f"| `{r.name}` | {', '.join(r.deletes)} | {days} | {setting} | {r.purpose} |")
    return "\n".join(lines) + "\n"
