"""The night summary: what came in, what was accepted, what the index now holds.

Counts only. Written as ``REPORTS_DIR/night-YYYY-MM-DD.json`` and as rows of
``night_metric`` (the quality reports of a later stage read them).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from childindex.errors import UnsafePath
from childindex.safe_paths import read_inside, write_inside
from childindex.settings import Settings

log = logging.getLogger(__name__)


def night_summary(settings: Settings, night: date) -> dict:
    from childindex.index.db import engine_for
    from childindex.index.models import Child, FileLedger, Involvement, SourceRecord
    from childindex.index.store import put_metrics
    from childindex.intake.discovery import WAITING_METRIC, unregistered_drops
    from childindex.linkage.evaluation import accuracy

    with engine_for(settings.index_url).connect() as conn:
        # One row per file of the night (a handful): its counts, and why it was quarantined.
        files = conn.execute(
            select(
                FileLedger.organisation,
                FileLedger.status,
                FileLedger.rows_read,
                FileLedger.rows_accepted,
                FileLedger.rows_rejected,
                FileLedger.seconds,
                FileLedger.reason,
                FileLedger.receipt_path,
                FileLedger.staged_path,
            ).where(FileLedger.night == night)
        ).all()
        # Files named for an earlier night that only tonight's run took: late.
        late = conn.execute(
            select(FileLedger.organisation, func.count())
            .where(FileLedger.run_night == night, FileLedger.night < night)
            .group_by(FileLedger.organisation)
        ).all()
        children = conn.execute(select(func.count()).select_from(Child)).scalar_one()
        records = conn.execute(select(func.count()).select_from(SourceRecord)).scalar_one()
        involvements = conn.execute(select(func.count()).select_from(Involvement)).scalar_one()
        multi = conn.execute(
            select(func.count()).select_from(
                select(SourceRecord.child_id)
                .group_by(SourceRecord.child_id)
                .having(func.count(func.distinct(SourceRecord.organisation)) > 1)
                .subquery()
            )
        ).scalar_one()
        cross_authority = conn.execute(
            select(func.count()).select_from(
                select(Involvement.child_id)
                .where(Involvement.area.is_not(None))
                .group_by(Involvement.child_id)
                .having(func.count(func.distinct(Involvement.area)) > 1)
                .subquery()
            )
        ).scalar_one()
        retention = _retention_metrics(conn, night)
        waiting = _stage_metrics(conn, night, WAITING_METRIC)
        bands = _row_bands(conn, settings, night)
        linked = _linked_by_organisation(conn, night)
        sizes = _cluster_sizes(conn)
    registry = settings.registry
    per_org: dict[str, dict[str, Any]] = {o.code: _empty(o.sector) for o in registry.organisations}
    for code, n in late:
        per_org.setdefault(code, _empty("unregistered"))["files_late"] = int(n)
    _identifier_completeness(per_org, [r.staged_path for r in files if r.staged_path])
    _held_back(settings, night, per_org)
    notices = _notices(settings, night)
    for code, counts in notices.pop("ledger").items():
        per_org.setdefault(code, _empty("unregistered")).update(counts)
    for code, status, read, acc, rej, seconds, reason, receipt_path, _staged in files:
        entry = per_org.setdefault(code, _empty("unregistered"))
        entry["files"] += 1
        entry["seconds"] = round(entry["seconds"] + float(seconds or 0), 3)
        # One definition throughout (docs/reports.md): rows read = rows loaded (accepted) +
        # rows rejected (refused by a row rule in a file that loaded) + rows not loaded because
        # their file was quarantined. A quarantined file's rows are never "rejected".
        entry["rows_read"] += int(read or 0)
        if status == "quarantined":
            entry["rows_quarantined"] += int(read or 0)
        else:
            entry["rows_accepted"] += int(acc or 0)
            entry["rows_rejected"] += int(rej or 0)
        # Per organisation: rows rejected by "column:rule" (from the night's receipts) and files
        # quarantined by rule (from the ledger). Counts, rule and column names only.
        rejected = entry.setdefault("rejected_by_rule", {})
        quarantined = entry.setdefault("quarantined_by_rule", {})
        if status == "quarantined":
            entry["files_quarantined"] += 1
            for rule in (reason or "unknown").split(","):
                quarantined[rule] = quarantined.get(rule, 0) + 1
            # The row rules its rows broke say why (all_rows_rejected, max_rejected_share):
            # kept apart, so "rejected by rule" stays within the rows of files that loaded.
            rejected = entry.setdefault("quarantined_rows_by_rule", {})
        if status == "duplicate":
            entry["files_duplicate"] += 1
        # Values set aside (kept rows, missing_identity) apart from rows rejected, by rule.
        elif receipt_path and (data := _receipt(Path(receipt_path))) is not None:
            aside = Counter(data.get("set_aside_counts", {}))  # every one, not the listed first 10,000
            set_aside = entry.setdefault("set_aside_by_rule", {})
            for key, n in data.get("rule_counts", {}).items():
                if int(n) > aside[key]:
                    rejected[key] = rejected.get(key, 0) + int(n) - aside[key]
            for key, n in aside.items():
                set_aside[key] = set_aside.get(key, 0) + n
    _waiting(per_org, waiting)
    # Only for organisations registered or sending tonight: one gone from the registry is not "silent".
    for code, band in bands.items():
        if code in per_org:
            per_org[code].update(row_band_low=band[0], row_band_high=band[1])
    for code, counts in linked.items():
        if code in per_org:
            per_org[code].update(counts)
    per_sector = _by_sector(per_org)
    silent = [code for code, e in per_org.items() if e["delivery"] == "sent no file"]
    summary: dict[str, Any] = {
        "night": night.isoformat(),
        "sectors": per_sector,
        "organisations": per_org,
        "organisations_registered": len(registry.organisations),
        "organisations_sending": sum(e["files"] > 0 for e in per_org.values()),
        "organisations_silent": silent,
        # No file yet, but one in the drop folder still arriving; and any with a file stuck.
        "organisations_waiting": [c for c, e in per_org.items() if e["delivery"].startswith("waiting")],
        "organisations_stuck": [c for c, e in per_org.items() if e["files_stuck"]],
        "unregistered_drops": [d.__dict__ for d in unregistered_drops(settings)],
        "files_in": sum(e["files"] for e in per_org.values()),
        "rows_read": sum(e["rows_read"] for e in per_org.values()),
        "rows_accepted": sum(e["rows_accepted"] for e in per_org.values()),
        "rows_rejected": sum(e["rows_rejected"] for e in per_org.values()),
        "rows_quarantined": sum(e["rows_quarantined"] for e in per_org.values()),
        "children": children,
        "source_records": records,
        "involvements": involvements,
        "children_in_several_organisations": multi,
        "children_in_several_areas": cross_authority,
        "records_linked": records - children,
        "cluster_sizes": sizes,
        "linkage": _linkage(settings, night),
        "retention": _last_retention(settings),
        "accuracy": accuracy(settings),
        "notices": notices,
        "index_url": _safe_url(settings.index_url),
        "receipts": str(settings.outbox_root),
    }
    metrics = {k: float(v) for k, v in summary.items() if isinstance(v, int | float)}
    # Per sector and per organisation, for the quality reports' trends: counts, and rows
    # rejected and files quarantined by rule (rule names only: column names stay in the
    # summary file). Keys: "<sector>:..." and "org:<code>:...".
    groups = [(s, e) for s, e in per_sector.items()] + [(f"org:{c}", e) for c, e in per_org.items()]
    for prefix, entry in groups:
        metrics.update({f"{prefix}:{k}": float(v) for k, v in entry.items() if isinstance(v, int | float)})
        for kind in ("rejected", "set_aside", "quarantined", "held"):
            for rule, n in _by_rule_name(entry.get(f"{kind}_by_rule", {})).items():
                metrics[f"{prefix}:{kind}:{rule}"] = float(n)
    metrics["review_queue_open"] = summary["linkage"]["review_queue_open"]
    metrics.update(retention)
    metrics.update({f"cluster_size_{int(n.rstrip('+')):02d}": float(k) for n, k in sizes.items()})
    if summary["accuracy"]:
        metrics.update({f"accuracy_{k}": v for k, v in summary["accuracy"].items()})
    put_metrics(settings.index_url, night, metrics)
    write_summary(settings, night, summary)
    return summary


COUNTS = (
    "files",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "rows_quarantined",
    "files_quarantined",
    "files_duplicate",
    "files_late",
    "rows_staged",
    "rows_with_nhs_number",
    "rows_with_upn",
    "notices_sent",
    "retractions_sent",
    "records_held",
    "files_waiting",
    "files_stuck",
    "records_tonight",
    "records_linked_to_another",
    "records_new_child",
)


def _receipt(path: Path) -> dict[str, Any] | None:
    """The receipt the ledger points to; None once it is gone, or where a link (never
    followed) stands in its place or in place of its outbox."""
    try:
        return json.loads(read_inside(path.parent.parent, path))
    except FileNotFoundError:
        return None
    except UnsafePath as exc:
        log.warning("receipt not read: %s", exc.message)
        return None


def _empty(sector: str) -> dict[str, Any]:
    return {"sector": sector, **dict.fromkeys(COUNTS, 0), "seconds": 0.0, "waiting_hours": 0.0}


def _waiting(per_org: dict[str, dict[str, Any]], waiting: dict[str, float]) -> None:
    """Each organisation's files waiting for their completion when intake last looked
    (``<code>:files|stuck|oldest_hours``, recorded by intake for the night), and what it
    delivered in words: "sent 1 file", "sent no file", "waiting: 1 file, 3 h" (nothing complete
    yet, a file still arriving) or "stuck: 1 file, 30 h" (waiting past
    CHILDINDEX_MARKER_WAIT_HOURS), the last two never mistaken for sending nothing."""
    for name, value in waiting.items():
        code, _, kind = name.rpartition(":")
        if code not in per_org and not value:
            continue  # an organisation no longer registered, with nothing waiting
        entry = per_org.setdefault(code, _empty("unregistered"))
        key = {"files": "files_waiting", "stuck": "files_stuck", "oldest_hours": "waiting_hours"}.get(kind)
        if key:
            entry[key] = round(float(value), 2) if key == "waiting_hours" else int(value)
    for entry in per_org.values():
        entry["delivery"] = delivery(
            entry["files"], entry["files_waiting"], entry["files_stuck"], entry["waiting_hours"]
        )


def delivery(files: int, waiting: int, stuck: int, hours: float) -> str:
    """What an organisation delivered tonight, in words: "sent 1 file", "sent no file",
    "waiting: 1 file, 3 h" (no complete file, one still arriving) or "stuck: 1 file, 30 h"
    (a file has waited past CHILDINDEX_MARKER_WAIT_HOURS; after "sent N files; " if it also sent)."""
    from childindex.intake.discovery import format_wait, n_files

    sent = f"sent {n_files(files)}" if files else ""
    if stuck:
        wait = f"stuck: {n_files(waiting)}, {format_wait(hours)}"
        return f"{sent}; {wait}" if sent else wait
    if waiting and not files:
        return f"waiting: {n_files(waiting)}, {format_wait(hours)}"
    return sent or "sent no file"


def _held_back(settings: Settings, night: date, per_org: dict[str, dict[str, Any]]) -> None:
    """Records linkage held back tonight per organisation, and by blocking rule (a record may
    count under several), from the night's linkage notices in the outboxes: counts only."""
    from childindex.linkage.held import notice_path

    for organisation in settings.registry.organisations:
        notice = _receipt(notice_path(settings.outbox(organisation.code), night))
        if notice is None:
            continue
        entry = per_org.setdefault(organisation.code, _empty(organisation.sector))
        entry["records_held"] = int(notice["records_held"])
        entry["held_by_rule"] = {s["rule"]: int(s["records_held"]) for s in notice["shared_fields"]}


def _identifier_completeness(per_org: dict[str, dict[str, Any]], staged: list[str]) -> None:
    """Rows staged tonight per organisation, and how many carry an NHS number and a UPN
    (counted over the pseudonyms in the night's staging files: counts only)."""
    import duckdb

    paths = [p for p in staged if Path(p).exists()]
    if not paths:
        return
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT organisation, count(*), count(nhs_key), count(upn_key) "
            "FROM read_parquet($paths, hive_partitioning = false) GROUP BY organisation",
            {"paths": paths},
        ).fetchall()
    finally:
        con.close()
    for code, n, nhs, upn in rows:
        entry = per_org.setdefault(code, _empty("unregistered"))
        entry.update(rows_staged=int(n), rows_with_nhs_number=int(nhs), rows_with_upn=int(upn))


def _row_bands(conn: Connection, settings: Settings, night: date) -> dict[str, tuple[float, float]]:
    """Per organisation, the row-count band intake checked its first file of the night against
    (an organisation that sent nothing: the band its next file would meet), as (lowest,
    highest) rows that pass; none before it has CHILDINDEX_VALIDATION__ROW_COUNT_MIN_HISTORY
    loaded files. :func:`childindex.validation.policy.row_count_band`, as intake's check uses
    it, over the same ledger rows: the rows read of its last ROW_COUNT_HISTORY loaded files
    before it."""
    from childindex.index.ledger import LOADED
    from childindex.index.models import FileLedger
    from childindex.validation.policy import row_count_band

    policy = settings.validation
    first = (
        select(FileLedger.organisation, func.min(FileLedger.id).label("first_id"))
        .where(FileLedger.night == night)
        .group_by(FileLedger.organisation)
        .subquery()
    )
    rank = func.row_number().over(partition_by=FileLedger.organisation, order_by=FileLedger.id.desc())
    ranked = (
        select(FileLedger.organisation, FileLedger.rows_read, rank.label("k"))
        .outerjoin(first, first.c.organisation == FileLedger.organisation)
        .where(
            FileLedger.status.in_(LOADED),
            FileLedger.night <= night,
            or_(first.c.first_id.is_(None), FileLedger.id < first.c.first_id),
        )
        .subquery()
    )
    history: dict[str, list[int]] = {}
    for code, rows in conn.execute(select(ranked.c.organisation, ranked.c.rows_read).where(
            ranked.c.k <= policy.row_count_history)):  # fmt: skip
        history.setdefault(code, []).append(int(rows))
    bands = {code: row_count_band(policy, counts) for code, counts in history.items()}
    return {code: (round(band[0], 3), round(band[1], 3)) for code, band in bands.items() if band is not None}


def _linked_by_organisation(conn: Connection, night: date) -> dict[str, dict[str, int]]:
    """Per organisation, its records the index holds from the night's files (``records_tonight``),
    how many of them belong to a child with another record (``records_linked_to_another``) and
    how many to a child the index first knew tonight (``records_new_child``). Counts only,
    from the index as linkage left it."""
    from childindex.index.models import Child, SourceRecord

    tonight = select(SourceRecord.child_id).where(SourceRecord.last_seen == night)
    sizes = (
        select(SourceRecord.child_id, func.count().label("n"))
        .where(SourceRecord.child_id.in_(tonight))
        .group_by(SourceRecord.child_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            SourceRecord.organisation,
            func.count(),
            func.sum(case((sizes.c.n > 1, 1), else_=0)),
            func.sum(case((Child.first_seen == night, 1), else_=0)),
        )
        .join(sizes, sizes.c.child_id == SourceRecord.child_id)
        .join(Child, Child.child_id == SourceRecord.child_id)
        .where(SourceRecord.last_seen == night)
        .group_by(SourceRecord.organisation)
    ).all()
    return {
        code: {
            "records_tonight": int(n),
            "records_linked_to_another": int(multi or 0),
            "records_new_child": int(new or 0),
        }
        for code, n, multi, new in rows
    }


CLUSTER_SIZES = 10  # children with this many source records or more share the last bar


def _cluster_sizes(conn: Connection) -> dict[str, int]:
    """Children in the index by their number of source records: {"1": n, ..., "10+": n}."""
    from childindex.index.models import SourceRecord

    per_child = select(func.count().label("n")).select_from(SourceRecord).group_by(SourceRecord.child_id).subquery()
    size = case((per_child.c.n >= CLUSTER_SIZES, CLUSTER_SIZES), else_=per_child.c.n)
    rows = conn.execute(select(size, func.count()).group_by(size)).all()
    return {(f"{n}+" if n == CLUSTER_SIZES else str(n)): int(k) for n, k in sorted(rows)}


def _by_sector(per_org: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The organisations' counts summed per sector, with how many sent nothing."""
    from childindex.whitelist import SECTORS

    out: dict[str, dict[str, Any]] = {}
    for sector in SECTORS:
        orgs = [e for e in per_org.values() if e["sector"] == sector]
        entry: dict[str, Any] = {k: sum(e[k] for e in orgs) for k in COUNTS}
        entry["seconds"] = round(sum(e["seconds"] for e in orgs), 3)
        entry["organisations"] = len(orgs)
        entry["organisations_silent"] = sum(e["delivery"] == "sent no file" for e in orgs)
        entry["organisations_waiting"] = sum(e["delivery"].startswith("waiting") for e in orgs)
        entry["organisations_stuck"] = sum(e["files_stuck"] > 0 for e in orgs)
        entry["waiting_hours"] = max((e["waiting_hours"] for e in orgs), default=0.0)
        for kind in ("rejected_by_rule", "set_aside_by_rule", "quarantined_by_rule", "quarantined_rows_by_rule",
                     "held_by_rule"):  # fmt: skip
            merged: dict[str, int] = {}
            for e in orgs:
                for rule, n in e.get(kind, {}).items():
                    merged[rule] = merged.get(rule, 0) + n
            entry[kind] = merged
        out[sector] = entry
    return out


def _retention_metrics(conn: Connection, night: date) -> dict[str, float]:
    """Rows and files deleted by each rule in the retention run for the night's day
    (``retention:RULE:rows``, ``retention:RULE:files``); none when it did not run.

    Retention runs for day D after D's small hours, so the summary of night D, written on
    D+1, sees it: each run is counted once, and a rerun of the summary counts the same."""
    from childindex.index.models import DeletionLog

    rows = conn.execute(
        select(DeletionLog.rule, func.sum(DeletionLog.rows_deleted), func.sum(DeletionLog.files_deleted))
        .where(DeletionLog.run_for == night, DeletionLog.dry_run == 0)
        .group_by(DeletionLog.rule)
    ).all()
    out: dict[str, float] = {}
    for rule, n_rows, n_files in rows:
        out[f"retention:{rule}:rows"] = float(n_rows or 0)
        out[f"retention:{rule}:files"] = float(n_files or 0)
    return out


def _by_rule_name(counts: dict[str, int]) -> dict[str, int]:
    """{"column:rule": n} -> {"rule": n}."""
    out: dict[str, int] = {}
    for key, n in counts.items():
        rule = key.rsplit(":", 1)[-1]
        out[rule] = out.get(rule, 0) + n
    return out


def _last_retention(settings: Settings) -> dict | None:
    """The latest retention run (its deletion certificate's counts), or None before any."""
    from childindex.index.db import engine_for
    from childindex.index.models import DeletionLog

    with engine_for(settings.index_url).connect() as conn:
        last = conn.execute(select(func.max(DeletionLog.run_at))).scalar_one()
        if last is None:
            return None
        rows = conn.execute(
            select(DeletionLog.rule, DeletionLog.cutoff, DeletionLog.rows_deleted, DeletionLog.files_deleted)
            .where(DeletionLog.run_at == last)
            .order_by(DeletionLog.id)
        ).all()
    return {
        "run_at": last.isoformat(),
        "rows_deleted": sum(r.rows_deleted for r in rows),
        "files_deleted": sum(r.files_deleted for r in rows),
        "rules": {
            r.rule: {"cutoff": r.cutoff.isoformat(), "rows": r.rows_deleted, "files": r.files_deleted} for r in rows
        },
    }


THRESHOLDS = ("match_threshold", "review_threshold")  # linkage's settings on the night (fractions)


def _linkage(settings: Settings, night: date) -> dict:
    """What linkage did on ``night`` (its metrics, written when it ran), the open review
    queue, and the model a night would use now."""
    from childindex.index.db import engine_for
    from childindex.linkage.model import current_model_path
    from childindex.linkage.review import open_count

    with engine_for(settings.index_url).connect() as conn:
        metrics = _stage_metrics(conn, night, "linkage_")
    assert settings.linkage.model_dir is not None
    return {
        **{name: value if name in THRESHOLDS else int(value) for name, value in metrics.items()},
        "review_queue_open": open_count(settings.index_url),
        "model_now": current_model_path(settings.linkage.model_dir).name,
    }


def _notices(settings: Settings, night: date) -> dict[str, Any]:
    """What the night's notices did (their metrics, written when they ran: counts and, on
    synthetic data, precision and recall against the truth), and per organisation the
    notices and retractions its files hold (``ledger``)."""
    from childindex.index.db import engine_for
    from childindex.index.models import NoticeLedger

    with engine_for(settings.index_url).connect() as conn:
        metrics = _stage_metrics(conn, night, "notices_")
        ledger = conn.execute(
            select(NoticeLedger.organisation, NoticeLedger.kind, NoticeLedger.children).where(
                NoticeLedger.night == night
            )
        ).all()
    out: dict[str, Any] = {
        name: round(value, 4) if "precision" in name or "recall" in name else int(value)
        for name, value in metrics.items()
    }
    per_org: dict[str, dict[str, int]] = {}
    for code, kind, n in ledger:
        entry = per_org.setdefault(code, {"notices_sent": 0, "retractions_sent": 0})
        entry["notices_sent" if kind == "notice" else "retractions_sent"] += int(n)
    out["ledger"] = per_org
    return out


def _stage_metrics(conn: Connection, night: date, prefix: str) -> dict[str, float]:
    """The night's metrics a stage wrote when it ran (names starting ``prefix``), by name
    without the prefix."""
    from childindex.index.models import NightMetric

    rows = conn.execute(
        select(NightMetric.name, NightMetric.value).where(
            NightMetric.night == night, NightMetric.name.like(prefix + "%")
        )
    ).all()
    return {name.removeprefix(prefix): value for name, value in rows}


def summary_path(settings: Settings, night: date) -> Path:
    return settings.reports_dir / f"night-{night.isoformat()}.json"


def write_summary(settings: Settings, night: date, summary: dict) -> Path:
    """Raises UnsafePath where the summary's name in REPORTS_DIR is a link (never written through)."""
    return write_inside(
        settings.reports_dir, summary_path(settings, night), json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )


def _safe_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
