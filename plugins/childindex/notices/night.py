"""A night's notices: read what linkage changed, compose notices and retractions, write each
organisation's files, then remember what was told, all in one transaction.

The files are written before the transaction and are the same for the same state (notice
ids and contents are deterministic), so a failure between the two is repaired by a rerun,
and a rerun after success finds nothing pending and writes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text

from childindex.index.db import engine_for
from childindex.index.models import (
    Area,
    Involvement,
    NoticeLedger,
    NoticePending,
    NoticeTold,
    Organisation,
    SourceRecord,
)
from childindex.index.store import arrow_schema, delete_in, insert_arrow, read_arrow
from childindex.settings import Settings

log = logging.getLogger(__name__)

_CHUNK = 5_000


@dataclass
class NoticeResult:
    """What a night's notices did: counts only (they go to XCom and the night's metrics)."""

    pending_records: int = 0
    children_touched: int = 0
    children_notified: int = 0
    notices: int = 0  # one per organisation and child
    involvements_announced: int = 0  # involvements listed in notices
    involvements_new: int = 0  # of which the organisation had not been told before
    retractions: int = 0
    involvements_withdrawn: int = 0
    organisations: int = 0
    unreferenced: int = 0  # organisations not told yet: their record has no reference
    seconds: float = 0.0
    by_organisation: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# The records of every child touched tonight (``recs``), and what was told with one of them
# on either side (``told``): found through the indexes (child_id, then each side of
# notice_told), never by scanning source_record or notice_told. (As a join with
# notice_pending, SQLite without statistics scanned source_record: 7 s at a million children.)
_TOUCHED = """
WITH pc AS (SELECT DISTINCT child_id FROM source_record WHERE source_key IN (SELECT source_key FROM notice_pending)),
recs AS (SELECT s.source_key FROM source_record s WHERE s.child_id IN (SELECT child_id FROM pc)),
told AS (SELECT t.recipient_key, t.other_key FROM recs r JOIN notice_told t ON t.recipient_key = r.source_key
         UNION
         SELECT t.recipient_key, t.other_key FROM recs r JOIN notice_told t ON t.other_key = r.source_key)
"""
# Those records and every record a told item names (a retraction's other side may be on
# another child now), with their involvements: enough for notices and retractions.
_REC_SQL = (
    _TOUCHED
    + """, keys AS (SELECT source_key FROM recs UNION SELECT recipient_key FROM told UNION SELECT other_key FROM told)
SELECT s.source_key, s.child_id, s.organisation, s.local_ref, s.first_seen,
       i.sector, i.area, i.service, i.contact_route, i.start_date, i.end_date
FROM keys k JOIN source_record s ON s.source_key = k.source_key LEFT JOIN involvement i ON i.source_key = s.source_key
"""
)
_TOLD_SQL = _TOUCHED + "SELECT recipient_key, other_key FROM told"


def send_notices(settings: Settings, night: date) -> NoticeResult:
    """Compose and write tonight's notices and retractions; returns counts. Under the
    notices lock: a second run waits for the first (and then finds nothing left to send)."""
    from childindex.locks import stage_lock

    with stage_lock(settings, "notices"):
        return _send_notices(settings, night)


def _send_notices(settings: Settings, night: date) -> NoticeResult:
    import pyarrow as pa

    from childindex.linkage.batch import connect
    from childindex.notices.compose import compose
    from childindex.notices.files import write_notices
    from childindex.staging.reference import key_rows

    started = time.perf_counter()
    result = NoticeResult()
    rec_schema = pa.schema(
        [*arrow_schema(SourceRecord, ["source_key", "child_id", "organisation", "local_ref", "first_seen"]),
         *arrow_schema(Involvement, ["sector", "area", "service", "contact_route", "start_date", "end_date"])]
    )  # fmt: skip
    pending_schema = pa.schema([("source_key", pa.string())])
    told_schema = pa.schema([("recipient_key", pa.string()), ("other_key", pa.string())])
    names = pa.schema([("code", pa.string()), ("name", pa.string())])
    pending, rec, told, orgs, areas = read_arrow(
        settings.index_url,
        [
            (select(NoticePending.source_key), pending_schema),
            (text(_REC_SQL), rec_schema),
            (text(_TOLD_SQL), told_schema),
            (select(Organisation.code, Organisation.name), names),
            (select(Area.code, Area.name), names),
        ],
    )
    result.pending_records = pending.num_rows
    if not pending.num_rows:
        _night_metrics(settings, night)
        result.seconds = round(time.perf_counter() - started, 2)
        return result
    recipients = sorted(set(rec["organisation"].to_pylist()))
    registry = {o.code for o in settings.registry.organisations}
    org_names = dict(zip(orgs["code"].to_pylist(), orgs["name"].to_pylist(), strict=True))
    ledger_rows: list[dict] = []
    # Linkage's DuckDB settings: bounded memory, spilling to the work folder (unbounded,
    # DuckDB kept 7.8 GiB for a first night's notices on a million children).
    con = connect(settings)
    try:
        for name, table in (("rec", rec), ("pending", pending), ("told", told), ("org", orgs), ("area", areas)):
            con.register(name, table)
        con.register("ref_key", pa.table(key_rows(settings.reference_key_bytes, recipients)))
        compose(con, night, settings.notices.lookback_days, settings.notices.sensitive)
        result.children_touched = _count(con, "SELECT count(*) FROM touched")
        result.unreferenced = _count(con, "SELECT count(*) FROM unreferenced")
        (result.notices, result.involvements_announced, result.involvements_new, result.retractions,
         result.involvements_withdrawn, result.children_notified, result.organisations) = con.execute("""
            SELECT count(*) FILTER (WHERE kind = 'notice'),
                   coalesce(sum(len(involvements)) FILTER (WHERE kind = 'notice'), 0),
                   coalesce(sum(new_involvements) FILTER (WHERE kind = 'notice'), 0),
                   count(*) FILTER (WHERE kind = 'retraction'),
                   coalesce(sum(len(involvements)) FILTER (WHERE kind = 'retraction'), 0),
                   count(DISTINCT child_id) FILTER (WHERE kind = 'notice'),
                   count(DISTINCT organisation)
            FROM notice""").fetchall()[0]  # fmt: skip
        # One organisation's notices in memory at a time (a first night on a full index
        # tells well over a million).
        for (code,) in con.execute("SELECT DISTINCT organisation FROM notice ORDER BY 1").fetchall():
            query = con.sql(
                "SELECT kind, notice_id, refs AS references, involvements FROM notice "
                "WHERE organisation = $code ORDER BY notice_id",
                params={"code": code},
            )
            mine = query.to_arrow_table().to_pylist()
            outbox = settings.outbox(code) if code in registry else settings.outbox_root / code
            document = write_notices(outbox, {"code": code, "name": org_names.get(code)}, night, mine)
            for kind in ("notice", "retraction"):
                listed = [n for n in document["notices"] if n["kind"] == kind]
                if listed:
                    ledger_rows.append({
                        "night": night, "organisation": code, "kind": kind, "children": len(listed),
                        "involvements": sum(len(n["involvements"]) for n in listed),
                        "file_name": f"notices-{night.isoformat()}.json",
                    })  # fmt: skip
            result.by_organisation[code] = {
                "notices": sum(n["kind"] == "notice" for n in mine),
                "retractions": sum(n["kind"] == "retraction" for n in mine),
            }
            del document, mine
        new_items = con.sql("SELECT recipient_key, other_key FROM new_item ORDER BY ALL").to_arrow_table()
        withdrawn = con.sql("SELECT DISTINCT recipient_key, other_key FROM withdrawn ORDER BY ALL").to_arrow_table()
    finally:
        con.close()
    _remember(settings.index_url, night, pending, new_items, withdrawn, ledger_rows)
    _night_metrics(settings, night)
    result.seconds = round(time.perf_counter() - started, 2)
    log.info("notices: %s", {k: v for k, v in result.as_dict().items() if k != "by_organisation"})
    return result


def _remember(url: str, night: date, pending: Any, new_items: Any, withdrawn: Any, ledger_rows: list[dict]) -> None:
    """One transaction: what was told, what was withdrawn, the ledger, and pending cleared."""
    import pyarrow as pa

    told = NoticeTold
    gone = delete(told).where(
        told.recipient_key == bindparam("recipient_key"), told.other_key == bindparam("other_key")
    )
    with engine_for(url).begin() as conn:
        # New items are not told yet by construction (one notices run at a time: the DAG's
        # max_active_runs); withdrawn ones go.
        pairs = withdrawn.to_pylist()
        for i in range(0, len(pairs), _CHUNK):
            conn.execute(gone, pairs[i : i + _CHUNK])
        if new_items.num_rows:
            insert_arrow(conn, NoticeTold, new_items.append_column("night", pa.array([night] * new_items.num_rows)))
        for row in ledger_rows:
            conn.execute(
                delete(NoticeLedger).where(
                    NoticeLedger.night == row["night"],
                    NoticeLedger.organisation == row["organisation"],
                    NoticeLedger.kind == row["kind"],
                )
            )
        if ledger_rows:
            conn.execute(insert(NoticeLedger), ledger_rows)
        delete_in(conn, NoticePending.__table__, NoticePending.source_key, pending["source_key"].to_pylist())


def _night_metrics(settings: Settings, night: date) -> None:
    """The night's totals (every run of the night: from the ledger, as its files hold them)
    and, on synthetic data, notices against the truth."""
    from sqlalchemy import func

    from childindex.index.store import put_metrics
    from childindex.notices.evaluation import notice_accuracy

    n = NoticeLedger
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            select(n.kind, func.count(), func.sum(n.children), func.sum(n.involvements))
            .where(n.night == night)
            .group_by(n.kind)
        ).all()
    totals = {kind: (orgs, children, involvements) for kind, orgs, children, involvements in rows}
    metrics: dict[str, float] = {}
    for kind, name in (("notice", "notices"), ("retraction", "retractions")):
        orgs, children, involvements = totals.get(kind, (0, 0, 0))
        metrics[f"notices_{name}_sent"] = float(children or 0)
        metrics[f"notices_{name}_organisations"] = float(orgs or 0)
        metrics[f"notices_{name}_involvements"] = float(involvements or 0)
    metrics.update(notice_accuracy(settings, night) or {})
    put_metrics(settings.index_url, night, metrics)


def _count(con: Any, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])
