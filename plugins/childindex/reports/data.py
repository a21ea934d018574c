"""What a report shows, read from the metrics history and the ledger: counts only."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from childindex.settings import Settings
from childindex.whitelist import SECTORS

REJECTION_WARNING = 0.05  # a share of rows rejected that an analyst should look at
MIN_ROWS = 20  # an organisation's night with fewer rows says nothing about its rates
COMPLETENESS_DROP = 0.10  # identifier completeness this far under its recent median
TREND_NIGHTS = 7  # the recent nights an organisation's rates are compared with
SHOWN_ORGANISATIONS = 100  # organisations listed by name in a report; the rest are counted


@dataclass
class NightData:
    night: date
    nights: list[date]  # the trend window, oldest first
    metrics: dict[date, dict[str, float]]  # night -> name -> value
    files: list[dict] = field(default_factory=list)  # the night's files: organisation, name, outcome, counts, receipt
    retention: list[dict] = field(default_factory=list)  # the run for the night's day: rule, rows, files
    attention: list[str] = field(default_factory=list)  # what needs a person, in words
    organisations: list[dict] = field(default_factory=list)  # those needing attention, with reasons

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
    data.organisations = organisations_needing_attention(data, settings)
    data.attention = _attention(data)
    return data


def organisations_needing_attention(data: NightData, settings: Settings) -> list[dict]:
    """Every organisation with something for a person to look at tonight, most reasons
    first: it sent nothing, a file was quarantined or came late, its rejection rate rose, or
    its NHS number or UPN completeness fell. Hundreds of organisations make one table, not
    hundreds of charts. Counts only."""
    if data.night not in data.metrics:
        return []
    registry = settings.registry
    areas = registry.area_by_code
    codes = list(registry.by_code) + sorted(
        {n.split(":")[1] for n in data.metrics[data.night] if n.startswith("org:")} - set(registry.by_code)
    )
    out = []
    for code in codes:
        reasons = _reasons(data, code)
        if reasons:
            org = registry.by_code.get(code)
            out.append(
                {
                    "code": code,
                    "name": org.name if org else "(no longer registered)",
                    "sector": org.sector if org else "",
                    "areas": ", ".join(areas[a].name for a in org.areas) if org else "",
                    "reasons": reasons,
                }
            )
    return sorted(out, key=lambda o: -len(o["reasons"]))


def _reasons(data: NightData, code: str) -> list[str]:
    from childindex.intake.discovery import format_wait, n_files

    def tonight(name: str) -> float:
        return data.value(f"org:{code}:{name}")

    def earlier(num: str, den: str) -> list[float]:
        shares = []
        for n in data.nights[:-1][-TREND_NIGHTS:]:
            m = data.metrics.get(n, {})
            d = m.get(f"org:{code}:{den}", 0.0)
            if d >= MIN_ROWS:
                shares.append(m.get(f"org:{code}:{num}", 0.0) / d)
        return shares

    out = []
    # A file waiting for its completion (recorded by intake) is not "sent no file": it is
    # still arriving, or stuck past CHILDINDEX_MARKER_WAIT_HOURS.
    waiting = f"{n_files(int(tonight('files_waiting')))}, {format_wait(tonight('waiting_hours'))}"
    if tonight("files_stuck"):
        out.append(f"stuck: {waiting} (waiting for completion longer than CHILDINDEX_MARKER_WAIT_HOURS: "
                   "no completion marker, or still .part)")  # fmt: skip
    elif f"org:{code}:files" in data.metrics[data.night] and not tonight("files"):
        arriving = f"waiting: {waiting} (still arriving: not yet complete)"
        out.append(arriving if tonight("files_waiting") else "sent no file")
    if tonight("files_quarantined"):
        rules = sorted(
            n.rsplit(":", 1)[1] for n in data.metrics[data.night] if n.startswith(f"org:{code}:quarantined:")
        )
        out.append(f"{tonight('files_quarantined'):.0f} file(s) quarantined ({', '.join(rules) or 'see receipts'})")
    if tonight("records_held"):
        from childindex.linkage.held import FIELDS

        prefix = f"org:{code}:held:"
        rules = sorted(n.removeprefix(prefix) for n in data.metrics[data.night] if n.startswith(prefix))
        shared = "; ".join(FIELDS.get(r, r) for r in rules) or "see its linkage notice"
        out.append(f"{tonight('records_held'):.0f} record(s) held back from linkage (too many records share: {shared})")
    if tonight("files_late"):
        out.append(f"{tonight('files_late'):.0f} file(s) for an earlier night arrived late")
    read = tonight("rows_read")
    if read >= MIN_ROWS:
        share = tonight("rows_rejected") / read
        before = earlier("rows_rejected", "rows_read")
        usual = statistics.median(before) if before else 0.0
        if share >= REJECTION_WARNING and share >= 2 * usual + 0.01:
            out.append(f"rejection rate rose to {share:.1%} (recent median {usual:.1%})")
    staged = tonight("rows_staged")
    for label, num in (("NHS numbers", "rows_with_nhs_number"), ("UPNs", "rows_with_upn")):
        before = earlier(num, "rows_staged")
        if staged >= MIN_ROWS and before:
            share, usual = tonight(num) / staged, statistics.median(before)
            if share < usual - COMPLETENESS_DROP:
                out.append(f"{label} on {share:.0%} of rows (recent median {usual:.0%})")
    return out


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
    from childindex.intake.discovery import format_wait

    out = []
    if data.night not in data.metrics:
        return ["no metrics for this night: did the night summary run?"]
    for sector in SECTORS:
        silent = data.value(f"{sector}:organisations_silent")
        if silent:
            out.append(f"{sector}: {silent:.0f} organisation(s) sent no file")
        stuck = data.value(f"{sector}:organisations_stuck")
        if stuck:
            out.append(f"{sector}: {stuck:.0f} organisation(s) with a file stuck waiting for completion "
                       f"(oldest {format_wait(data.value(f'{sector}:waiting_hours'))})")  # fmt: skip
        waiting = data.value(f"{sector}:organisations_waiting")
        if waiting:
            out.append(f"{sector}: {waiting:.0f} organisation(s) with no complete file yet, one still arriving")
        quarantined = data.value(f"{sector}:files_quarantined")
        if quarantined:
            out.append(f"{sector}: {quarantined:.0f} file(s) quarantined")
        read = data.value(f"{sector}:rows_read")
        if read and data.value(f"{sector}:rows_rejected") / read > REJECTION_WARNING:
            share = data.value(f"{sector}:rows_rejected") / read
            out.append(f"{sector}: {share:.1%} of rows rejected (over {REJECTION_WARNING:.0%})")
    if data.organisations:
        out.append(f"{len(data.organisations)} organisation(s) need attention (listed below)")
    if not data.value("linkage_files"):
        out.append("linkage linked no file tonight")
    held = data.value("linkage_records_held")
    if held:
        out.append(
            f"linkage held back {held:.0f} record(s) of {data.value('linkage_files_held'):.0f} file(s): too many "
            "records share the same values to compare them all (the senders have a linkage notice)"
        )
    queue = data.series("review_queue_open")
    earlier = [q for q in queue[:-1] if not math.isnan(q)]
    if earlier and not math.isnan(queue[-1]) and queue[-1] > 1.5 * max(earlier[-7:]) + 10:
        out.append(f"the review queue grew to {queue[-1]:.0f} open items")
    return out
