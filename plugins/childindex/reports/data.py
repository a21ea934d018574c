"""What a report shows, read from the metrics history and the ledger: counts only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from childindex.settings import Settings
from childindex.whitelist import SECTORS

REJECTION_WARNING = 0.05  # a share of rows rejected that an analyst should look at


@dataclass
class NightData:
    night: date
    nights: list[date]  # the trend window, oldest first
    metrics: dict[date, dict[str, float]]  # night -> name -> value
    files: list[dict] = field(default_factory=list)  # the night's files: organisation, name, outcome, counts, receipt
    retention: list[dict] = field(default_factory=list)  # the run for the night's day: rule, rows, files
    attention: list[str] = field(default_factory=list)  # what needs a person, in words

    def series(self, name: str, missing: float = math.nan) -> list[float]:
        """The metric over the window, ``missing`` on nights without it (NaN: a gap in a line)."""
        return [self.metrics.get(n, {}).get(name, missing) for n in self.nights]

    def value(self, name: str, default: float = 0.0) -> float:
        return self.metrics.get(self.night, {}).get(name, default)

    @property
    def succeeded(self) -> bool:
        return not self.attention


def load_night(settings: Settings, night: date, days: int = 30) -> NightData:
    from childindex.index.db import engine_for
    from childindex.index.models import FileLedger, NightMetric

    first = night - timedelta(days=days - 1)
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            select(NightMetric.night, NightMetric.name, NightMetric.value).where(
                NightMetric.night >= first, NightMetric.night <= night
            )
        ).all()
        files = conn.execute(
            select(
                FileLedger.organisation,
                FileLedger.file_name,
                FileLedger.status,
                FileLedger.rows_read,
                FileLedger.rows_accepted,
                FileLedger.rows_rejected,
                FileLedger.reason,
                FileLedger.receipt_path,
            )
            .where(FileLedger.night == night)
            .order_by(FileLedger.organisation, FileLedger.id)
        ).all()
    metrics: dict[date, dict[str, float]] = {}
    for n, name, value in rows:
        n = n if isinstance(n, date) else date.fromisoformat(n)
        metrics.setdefault(n, {})[name] = value
    data = NightData(
        night=night,
        nights=[first + timedelta(days=i) for i in range(days)],
        metrics=metrics,
        files=[r._asdict() for r in files],
        retention=_retention(metrics.get(night, {})),
    )
    data.attention = _attention(data)
    return data


def _retention(metrics: dict[str, float]) -> list[dict]:
    """The night's ``retention:RULE:rows|files`` metrics, in the policy's order."""
    from childindex.retention.policy import policy

    return [
        {"rule": r.name, "rows_deleted": int(metrics[rows]), "files_deleted": int(metrics[f"retention:{r.name}:files"])}
        for r in policy()
        if (rows := f"retention:{r.name}:rows") in metrics
    ]


def _attention(data: NightData) -> list[str]:
    """What needs a person tonight, most important first."""
    out = []
    if data.night not in data.metrics:
        return ["no metrics for this night: did the night summary run?"]
    for sector in SECTORS:
        silent = data.value(f"{sector}:organisations_silent")
        if silent:
            out.append(f"{sector}: {silent:.0f} organisation(s) sent no file")
        quarantined = data.value(f"{sector}:files_quarantined")
        if quarantined:
            out.append(f"{sector}: {quarantined:.0f} file(s) quarantined")
        read = data.value(f"{sector}:rows_read")
        if read and data.value(f"{sector}:rows_rejected") / read > REJECTION_WARNING:
            share = data.value(f"{sector}:rows_rejected") / read
            out.append(f"{sector}: {share:.1%} of rows rejected (over {REJECTION_WARNING:.0%})")
    if not data.value("linkage_files"):
        out.append("linkage linked no file tonight")
    queue = data.series("review_queue_open")
    earlier = [q for q in queue[:-1] if not math.isnan(q)]
    if earlier and not math.isnan(queue[-1]) and queue[-1] > 1.5 * max(earlier[-7:]) + 10:
        out.append(f"the review queue grew to {queue[-1]:.0f} open items")
    return out
