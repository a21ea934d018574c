"""Notices against the synthetic generator's ground truth: what practitioners were told.

The unit is an *item*: one organisation's record told of another organisation's
involvement (``notice_told``). An item sent tonight is true when the generator made both
records for one person. A true new co-involvement is a pair of current involvements of two
organisations with one person, announceable under the policy, whose later record first
arrived since the previous night the notices ran (one night's batch can hold several nights'
deltas); it is missed when no notice (tonight's or an earlier one) told it.
Precision and recall, overall and for items whose two involvements are in different
authority areas (the child who moved: the case the index exists for). Counts only.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text

from childindex.settings import Settings

_INDEX_SQL = """
SELECT s.source_key, s.organisation, CASE WHEN s.local_ref IS NULL THEN 0 ELSE 1 END AS referenced, s.first_seen,
       i.area, i.service, i.end_date
FROM source_record s JOIN involvement i ON i.source_key = s.source_key
"""


def notice_accuracy(settings: Settings, night: date, truth_dir: Path | None = None) -> dict[str, float] | None:
    """Night metrics ``notices_true``, ``notices_false``, ``notices_missed``,
    ``notices_precision``, ``notices_recall`` and their ``_cross_area`` versions; None
    without ground truth."""
    import duckdb
    import pyarrow as pa

    from childindex.index.store import read_arrow
    from childindex.linkage.evaluation import has_truth, load_truth
    from childindex.notices.compose import run_script
    from childindex.whitelist import SENSITIVE_SERVICE

    truth_dir = truth_dir or settings.ground_truth_dir
    if truth_dir is None or not has_truth(truth_dir):
        return None
    rec_schema = pa.schema([
        ("source_key", pa.string()), ("organisation", pa.string()), ("referenced", pa.int64()),
        ("first_seen", pa.date32()), ("area", pa.string()), ("service", pa.string()), ("end_date", pa.date32()),
    ])  # fmt: skip
    told_schema = pa.schema([("recipient_key", pa.string()), ("other_key", pa.string()), ("night", pa.date32())])
    since = _previous_run(settings, night)
    rec, told = read_arrow(
        settings.index_url,
        [
            (text(_INDEX_SQL), rec_schema),
            (text("SELECT recipient_key, other_key, night FROM notice_told"), told_schema),
        ],
    )
    con = duckdb.connect()
    try:
        con.register("rec_arrow", rec)
        con.register("told", told)
        load_truth(con, settings.key, Path(truth_dir))
        run_script(
            con,
            """
            CREATE TABLE r AS
            SELECT a.*, t.person_id,
                   a.end_date IS NULL OR a.end_date >= $night::DATE - $lookback::INTEGER AS current,
                   a.service = $sensitive AS sensitive
            FROM rec_arrow a JOIN truth t USING (source_key);
            CREATE TABLE sent AS
            SELECT x.person_id = y.person_id AS true_item, x.area IS DISTINCT FROM y.area AS cross_area
            FROM told t JOIN r x ON x.source_key = t.recipient_key JOIN r y ON y.source_key = t.other_key
            WHERE t.night = $night::DATE;
            CREATE TABLE due AS
            SELECT (x.source_key, y.source_key) IN (SELECT (recipient_key, other_key) FROM told) AS told,
                   x.area IS DISTINCT FROM y.area AS cross_area
            FROM r x JOIN r y ON x.person_id = y.person_id AND x.organisation <> y.organisation
            WHERE x.current AND y.current AND x.referenced = 1 AND NOT (y.sensitive AND $withhold)
              AND greatest(x.first_seen, y.first_seen) > $since::DATE
              AND greatest(x.first_seen, y.first_seen) <= $night::DATE;
            """,
            {
                "night": night,
                "since": since,
                "lookback": settings.notices.lookback_days,
                "sensitive": SENSITIVE_SERVICE,
                "withhold": settings.notices.sensitive == "withhold",
            },
        )
        return _figures(con)
    finally:
        con.close()


def _previous_run(settings: Settings, night: date) -> date:
    """The last night before ``night`` whose notices ran (they always write their metrics)."""
    from sqlalchemy import func, select

    from childindex.index.db import engine_for
    from childindex.index.models import NightMetric

    with engine_for(settings.index_url).connect() as conn:
        last = conn.execute(
            select(func.max(NightMetric.night)).where(
                NightMetric.name == "notices_notices_sent", NightMetric.night < night
            )
        ).scalar_one()
    if last is None:
        return date.min
    return last if isinstance(last, date) else date.fromisoformat(last)


def _figures(con: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for suffix, where in (("", "true"), ("_cross_area", "cross_area")):
        sent_true, sent_false = con.execute(
            f"SELECT count(*) FILTER (WHERE true_item), count(*) FILTER (WHERE NOT true_item) FROM sent WHERE {where}"
        ).fetchall()[0]
        due, missed = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT told) FROM due WHERE {where}"
        ).fetchall()[0]
        out[f"notices_true{suffix}"] = float(sent_true)
        out[f"notices_false{suffix}"] = float(sent_false)
        out[f"notices_missed{suffix}"] = float(missed)
        out[f"notices_due{suffix}"] = float(due)
        # Undefined (nothing sent, nothing due) is left out rather than shown as 0 or 1.
        if sent_true + sent_false:
            out[f"notices_precision{suffix}"] = sent_true / (sent_true + sent_false)
        if due:
            out[f"notices_recall{suffix}"] = (due - missed) / due
    return out
