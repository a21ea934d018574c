"""What a report shows, read from the metrics history and the ledger: counts only."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from childindex.settings import Settings
from childindex.whitelist import SECTORS

REJECTION_WARNING = 0.05  # a share of rows rejected that an analyst should look at
MIN_ROWS = 20  # an organisation's night with fewer rows says nothing about its rates
COMPLETENESS_DROP = 0.10  # identifier completeness this far under its recent median
TREND_NIGHTS = 7  # the recent nights an organisation's rates are compared with
LOADED = "loaded"  # earlier()'s denominator: rows of the files that loaded
SHOWN_ORGANISATIONS = 100  # organisations listed by name in a report; the rest are counted
PANELS = 12  # organisations drawn in a per-organisation chart: the worst by its measure
NHS_GO_LIVE = 0.95  # CP-IS would not go live below 95% of records matched to an NHS number
# What a report calls rows, everywhere (headline, tables, charts, night summary):
DEFINITION = (
    "Rows read: every row of the night's files. Rows loaded: accepted into the index's staging. "
    "Rows rejected: refused by a row rule in a file that loaded. Rows not loaded (file quarantined): "
    "every row of a file quarantined as a whole; they are not rejected rows. Rows read = loaded + rejected + "
    "not loaded. Rejection rate: rows rejected / rows in files that loaded (loaded + rejected)."
)


@dataclass
class NightData:
    night: date
    nights: list[date]  # the trend window, oldest first
    metrics: dict[date, dict[str, float]]  # night -> name -> value
    files: list[dict] = field(default_factory=list)  # the night's files: organisation, name, outcome, counts, receipt
    retention: list[dict] = field(default_factory=list)  # the run for the night's day: rule, rows, files
    attention: list[str] = field(default_factory=list)  # what needs a person, in words
    organisations: list[dict] = field(default_factory=list)  # those needing attention, with reasons
    codes: list[str] = field(default_factory=list)  # every organisation: registered, then any other with metrics
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (name, sector)
    model: dict | None = None  # the linkage model the night used (its file's name, version, comparisons)

    def series(self, name: str, missing: float = math.nan) -> list[float]:
        """The metric over the window, ``missing`` on nights without it (NaN: a gap in a line)."""
        return [self.metrics.get(n, {}).get(name, missing) for n in self.nights]

    def value(self, name: str, default: float = 0.0) -> float:
        return self.metrics.get(self.night, {}).get(name, default)

    def share_series(self, num: str, den: str, minimum: float = 1) -> list[float]:
        """num / den over the window; NaN where den is under ``minimum`` or missing."""
        return [n / d if d >= minimum else math.nan for n, d in zip(self.series(num), self.series(den), strict=True)]

    def rejection_rate(self, prefix: str, night: date | None = None) -> float | None:
        """Rows rejected / rows in files that loaded, for a sector or ``org:CODE``; None
        without such rows."""
        m = self.metrics.get(night or self.night, {})
        loaded = loaded_rows(m, prefix)
        return m.get(f"{prefix}:rows_rejected", 0.0) / loaded if loaded else None

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
    registry = settings.registry
    tonight = metrics.get(night, {})
    data.codes = list(registry.by_code) + sorted(
        {n.split(":")[1] for n in tonight if n.startswith("org:")} - set(registry.by_code)
    )
    data.names = {o.code: (o.name, o.sector) for o in registry.organisations}
    data.model = _model(settings, tonight)
    data.organisations = organisations_needing_attention(data, settings)
    data.attention = _attention(data)
    return data


def _model(settings: Settings, tonight: dict[str, float]) -> dict | None:
    """The linkage model the night used (``linkage_model_version``: 0 is the bundled one),
    or, when linkage did not run, the one a night would use now. Its probabilities and
    labels only (a model holds no record's value); None when its file is gone."""
    import json

    from childindex.linkage.model import BUNDLED_MODEL, current_model_path, model_path

    assert settings.linkage.model_dir is not None
    version = tonight.get("linkage_model_version")
    if version is None:
        path, used = current_model_path(settings.linkage.model_dir), False
    else:
        path, used = model_path(settings.linkage.model_dir, int(version)), True
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"file": path.name, "used": used, "missing": True}
    splink = payload["splink_settings"]
    return {
        "file": path.name,
        "used": used,
        "missing": False,
        "version": int(payload.get("version", 0)),
        "trained_at": payload.get("trained_at", "not recorded"),
        "bundled": path == BUNDLED_MODEL,
        "prior": float(splink["probability_two_random_records_match"]),
        "comparisons": [
            {
                "name": c["output_column_name"],
                "levels": [
                    {"label": lv.get("label_for_charts", ""), "m": lv["m_probability"], "u": lv["u_probability"]}
                    for lv in c["comparison_levels"]
                    if not lv.get("is_null_level") and lv.get("m_probability") and lv.get("u_probability")
                ],
            }
            for c in splink["comparisons"]
        ],
    }


def worst(data: NightData, codes: list[str], score: Callable[[str], float | None], n: int = PANELS) -> list[str]:
    """Up to ``n`` organisations with the highest ``score`` tonight (None: not scored, left
    out): a chart per measure draws these, the table lists the rest."""
    scored = [(s, c) for c in codes if (s := score(c)) is not None and not math.isnan(s)]
    return [c for _s, c in sorted(scored, key=lambda sc: (-sc[0], sc[1]))[:n]]


def org_value(data: NightData, code: str, name: str, night: date | None = None) -> float | None:
    return data.metrics.get(night or data.night, {}).get(f"org:{code}:{name}")


def org_share(data: NightData, code: str, num: str, den: str, night: date | None = None) -> float | None:
    d = org_value(data, code, den, night)
    return (org_value(data, code, num, night) or 0.0) / d if d else None


def organisation_rows(data: NightData) -> list[dict]:
    """Every organisation's figures tonight (counts and shares only), the ones needing
    attention first: the table under the per-organisation charts."""
    first = {o["code"]: k for k, o in enumerate(data.organisations)}
    out = []
    for code in sorted(data.codes, key=lambda c: (first.get(c, len(first)), c)):
        if f"org:{code}:files" not in data.metrics.get(data.night, {}):
            continue
        name, sector = data.names.get(code, ("(no longer registered)", ""))
        low, high = org_value(data, code, "row_band_low"), org_value(data, code, "row_band_high")
        out.append(
            {
                "code": code,
                "name": name,
                "sector": sector,
                "rows_read": int(org_value(data, code, "rows_read") or 0),
                "band": f"{low:,.0f} to {high:,.0f}" if low is not None and high is not None else "",
                "rows_quarantined": int(org_value(data, code, "rows_quarantined") or 0),
                "rejection_rate": data.rejection_rate(f"org:{code}"),
                "nhs": org_share(data, code, "rows_with_nhs_number", "rows_staged") if sector != "education" else None,
                "upn": org_share(data, code, "rows_with_upn", "rows_staged") if sector == "education" else None,
                "link_rate": org_share(data, code, "records_linked_to_another", "records_tonight"),
                "new_children": org_share(data, code, "records_new_child", "records_tonight"),
            }
        )
    return out


# The metrics an index page's line per night is made of.
STATUS_METRICS = ("files_in", "rows_read", "rows_rejected", "rows_quarantined", "linkage_files",
                  "linkage_records_held", "review_queue_open")  # fmt: skip


def night_statuses(settings: Settings, nights: list[date]) -> dict[date, dict]:
    """Per night, its status as recorded (``complete``, or what went wrong: files quarantined,
    records held back, organisations silent, linkage that linked nothing, no summary) and its
    headline counts, from one query of the metrics history."""
    from childindex.index.db import engine_for
    from childindex.index.models import NightMetric

    names = [*STATUS_METRICS, *(f"{s}:{k}" for s in SECTORS for k in ("files_quarantined", "organisations_silent"))]
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            select(NightMetric.night, NightMetric.name, NightMetric.value).where(
                NightMetric.night.in_(nights), NightMetric.name.in_(names)
            )
        ).all()
    found: dict[date, dict[str, float]] = {}
    for n, name, value in rows:
        found.setdefault(n if isinstance(n, date) else date.fromisoformat(n), {})[name] = value
    out = {}
    for night in nights:
        m = found.get(night)
        if m is None or "rows_read" not in m:
            out[night] = {"status": "no night summary recorded", "ok": False, "counts": None}
            continue
        quarantined = sum(m.get(f"{s}:files_quarantined", 0.0) for s in SECTORS)
        silent = sum(m.get(f"{s}:organisations_silent", 0.0) for s in SECTORS)
        problems = [
            *([f"{quarantined:.0f} file(s) quarantined"] if quarantined else []),
            *([f"{m['linkage_records_held']:.0f} record(s) held"] if m.get("linkage_records_held") else []),
            *([f"{silent:.0f} organisation(s) sent nothing"] if silent else []),
            *(["linkage linked no file"] if not m.get("linkage_files") else []),
        ]
        out[night] = {
            "status": "; ".join(problems) or "complete",
            "ok": not problems,
            "counts": {k: int(m.get(k, 0.0)) for k in ("files_in", "rows_read", "rows_rejected", "rows_quarantined")},
        }
    return out


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
            d = loaded_rows(m, f"org:{code}") if den == LOADED else m.get(f"org:{code}:{den}", 0.0)
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
        out.append(
            f"{tonight('files_quarantined'):.0f} file(s) quarantined ({', '.join(rules) or 'see receipts'}): "
            f"{tonight('rows_quarantined'):.0f} row(s) not loaded"
        )
    if tonight("records_held"):
        from childindex.linkage.held import FIELDS

        prefix = f"org:{code}:held:"
        rules = sorted(n.removeprefix(prefix) for n in data.metrics[data.night] if n.startswith(prefix))
        shared = "; ".join(FIELDS.get(r, r) for r in rules) or "see its linkage notice"
        out.append(f"{tonight('records_held'):.0f} record(s) held back from linkage (too many records share: {shared})")
    if tonight("files_late"):
        out.append(f"{tonight('files_late'):.0f} file(s) for an earlier night arrived late")
    loaded = loaded_rows(data.metrics[data.night], f"org:{code}")
    if loaded >= MIN_ROWS:
        share = tonight("rows_rejected") / loaded
        before = earlier("rows_rejected", LOADED)
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


def loaded_rows(metrics: dict[str, float], prefix: str) -> float:
    """Rows of the files that loaded (accepted or rejected by a row rule): rows read less
    the rows of quarantined files."""
    return metrics.get(f"{prefix}:rows_read", 0.0) - metrics.get(f"{prefix}:rows_quarantined", 0.0)


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
            rows = data.value(f"{sector}:rows_quarantined")
            out.append(f"{sector}: {quarantined:.0f} file(s) quarantined ({rows:.0f} row(s) not loaded)")
        share = data.rejection_rate(sector)
        if share is not None and share > REJECTION_WARNING:
            out.append(
                f"{sector}: {share:.1%} of rows in files that loaded rejected by row rules "
                f"(over {REJECTION_WARNING:.0%})"
            )
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
