"""File policy: when a file whose rows were read is still refused as a whole.

A file can parse and yet be untrustworthy: far smaller or larger than usual (a broken
export), or with too many rows breaking rules. Its rows are then not staged at all; the
receipt still lists every row rule, so the organisation knows what to fix.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from childindex.errors import FileRejected

if TYPE_CHECKING:
    from collections.abc import Sequence

    from childindex.settings import Settings, ValidationPolicy


def row_count_band(policy: ValidationPolicy, history: Sequence[int]) -> tuple[float, float] | None:
    """The rows a file may hold and pass, as (lowest, highest): within FACTOR of the median of
    ``history`` (the rows read of the organisation's last loaded files), or within SLACK rows
    of it. Both ranges hold the median, so together they are one band. None before
    ROW_COUNT_MIN_HISTORY files: no band yet. The quality report draws the same band."""
    if len(history) < policy.row_count_min_history:
        return None
    median = statistics.median(history)
    factor, slack = policy.row_count_factor, policy.row_count_slack
    return max(0.0, min(median / factor, median - slack)), max(median * factor, median + slack)


def check_row_count(settings: Settings, rows: int, history: list[int]) -> None:
    """A sudden change in size (a halving, a tripling) suggests a broken export, not a real
    night; a change of a few rows in a small organisation's delta is just a quiet night."""
    policy = settings.validation
    band = row_count_band(policy, history)
    if band is None or band[0] <= rows <= band[1]:
        return
    median = statistics.median(history)
    low, high = median / policy.row_count_factor, median * policy.row_count_factor
    raise FileRejected(
        "row_count_anomaly",
        f"{rows} rows, outside {low:.0f} to {high:.0f} (the median of the last {len(history)} "
        f"accepted files, divided and multiplied by {policy.row_count_factor:g}) and more than "
        f"{policy.row_count_slack} rows from that median",
    )


def check_rejected_share(limit: float, rows_read: int, rows_rejected: int, rows_set_aside: int = 0) -> None:
    """No row accepted, or more rows broken than the organisation's limit: the export itself is
    suspect. Rows kept with a value set aside count as broken: a file whose dates are all in
    the wrong format is a broken export, not a night of children without birthdays."""
    if rows_read and rows_read - rows_rejected - rows_set_aside <= 0:
        raise FileRejected("all_rows_rejected", "every row broke at least one rule")
    share = (rows_rejected + rows_set_aside) / max(rows_read, 1)
    if share > limit:
        what = "rejected or kept with a value set aside" if rows_set_aside else "rejected"
        raise FileRejected(
            "rejected_share_over_threshold",
            f"{share:.1%} of rows were {what}; the organisation's limit is {limit:.1%}",
        )
