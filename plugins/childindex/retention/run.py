"""Retention: delete what is stale, each rule in its own transaction, and certify it.

The rules, their purposes and default periods are listed in ``policy.yaml``;
each period can be changed with its setting (``CHILDINDEX_RETENTION__*``). Every run writes a deletion
certificate, ``REPORTS_DIR/retention/certificate-YYYY-MM-DD.json``: rule, cutoff, rows
deleted per table and files deleted. Counts only, never a child's data. ``today`` is
injectable (the DAG passes its logical date), so a rerun of a day deletes the same things.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, text

from childindex.errors import TransientError
from childindex.intake.discovery import never_taken
from childindex.intake.receive import all_debris
from childindex.notices.files import NOTICES_FOLDER
from childindex.retention.files import (
    dated_dirs,
    file_night,
    files_before,
    modified_on,
    older,
    older_files,
    prune_empty,
    remove,
)
from childindex.retention.policy import policy
from childindex.retention.rules import REPEAT_UNTIL_DONE, ROW_RULES
from childindex.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    rule: str
    cutoff: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    files_deleted: int = 0
    skipped: str | None = None  # why a rule did not run


def run_retention(settings: Settings, today: date, dry_run: bool = False, airflow: bool = False) -> dict:
    """Apply every rule of the policy; returns the certificate (also written to disk
    unless dry run). ``airflow``: also clean Airflow's metadata (inside Airflow only).
    Under the index lock: linkage never publishes children that retention is deleting."""
    from childindex.locks import INDEX_LOCK, stage_lock

    with stage_lock(settings, INDEX_LOCK):
        return _run_retention(settings, today, dry_run, airflow)


def _run_retention(settings: Settings, today: date, dry_run: bool, airflow: bool) -> dict:
    from childindex.index.db import engine_for, reclaim

    engine = engine_for(settings.index_url)
    outcomes: list[RuleOutcome] = []
    paths = _ledger_paths(engine, settings)
    nights = paths.nights
    file_rules: dict[str, Callable[[date], Iterable[Path]]] = {
        "archive": lambda c: _archived(settings, c, paths.received),
        # Linked staging files, by the earlier of their night and the night they arrived.
        "staging": lambda c: [Path(p) for p, night in paths.linked.items() if night < c and Path(p).exists()],
        "staging_unlinked": lambda c: _expire_unlinked(engine, c, dry_run),
        "quarantine": lambda c: files_before(settings.quarantine_dir, c, nights, names_may_lie=True),
        "receipts": lambda c: (
            p
            for root in _outboxes(settings)
            for p in files_before(root, c, nights, names_may_lie=True)
            if NOTICES_FOLDER not in p.parts
        ),
        "notices": lambda c: _notice_files(settings, engine, c),
        "drop_unfinished": lambda c: _never_taken(settings, c),
        "reports": lambda c: files_before(settings.reports_dir, c, nights),
        # Only what a crash left behind: an intake running now keeps its work folder, its
        # temporary files and the staging file it has not yet recorded (all newer than a day).
        "working_files": lambda c: (
            older_files(settings.work_dir, c) + older(all_debris(settings, paths.ledgered, _outboxes(settings)), c)
        ),
    }
    for rule in policy():
        cutoff = today - timedelta(days=rule.period(settings.retention))
        outcome = RuleOutcome(rule.name, cutoff.isoformat())
        if rule.kind == "airflow":
            if airflow:
                outcome.rows_deleted = _airflow_db_clean(cutoff, dry_run)
            else:
                outcome.skipped = "Airflow's metadata is cleaned by the retention DAG"
        elif rule.kind == "rows":
            with engine.begin() as conn:
                for table, where in ROW_RULES[rule.name]:
                    while True:
                        n = _delete(conn, table, where, cutoff, dry_run)
                        outcome.rows_deleted[table] = outcome.rows_deleted.get(table, 0) + n
                        if not n or dry_run or rule.name not in REPEAT_UNTIL_DONE:
                            break
        else:
            for path in list(file_rules[rule.name](cutoff)):
                outcome.files_deleted += remove(path, dry_run)
        outcomes.append(outcome)
    if not dry_run:
        # Folders named by a file's hash or a night say which files were there: once
        # empty, they go too.
        for root in (settings.quarantine_dir, settings.staging_dir):
            prune_empty(root)
        prune_empty(settings.archive_dir, depth=3)
        tables = {t for o in outcomes for t, n in o.rows_deleted.items() if n and "." not in t}
        reclaim(engine, tables, full=settings.retention.postgres_vacuum == "full")

    certificate = {
        "certificate_version": 1,
        "run_for": today.isoformat(),
        "written_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "dry_run": dry_run,
        "rules": [o.__dict__ for o in outcomes],
        "rows_deleted": sum(sum(o.rows_deleted.values()) for o in outcomes),
        "files_deleted": sum(o.files_deleted for o in outcomes),
    }
    if not dry_run:
        _log_certificate(engine, outcomes, today)
        from childindex.safe_paths import write_inside  # here: the only writer in this module

        # Never through a link in REPORTS_DIR/retention/ (UnsafePath): written whole, renamed.
        path = settings.reports_dir / "retention" / f"certificate-{today.isoformat()}.json"
        write_inside(settings.reports_dir, path, json.dumps(certificate, indent=2) + "\n")
    log.info(
        "retention for %s: %d rows, %d files deleted (dry run: %s)",
        today,
        certificate["rows_deleted"],
        certificate["files_deleted"],
        dry_run,
    )
    return certificate


def _outboxes(settings: Settings) -> list[Path]:
    """Every outbox root: OUTBOX_ROOT, and each registered organisation's own outbox where the
    registry puts it elsewhere."""
    roots = [settings.outbox_root]
    for organisation in settings.registry.organisations:
        own = settings.outbox(organisation.code)
        if not own.is_relative_to(settings.outbox_root):
            roots.append(own)
    return roots


def _never_taken(settings: Settings, cutoff: date) -> list[Path]:
    """What intake will never take from a registered drop folder (an upload never completed,
    an upload tool's hidden temporary file, a marker without its file) that last changed
    before the cutoff. Dated by the status-change time, which an upload tool cannot set (a
    copy may keep its source's modification time, or a wrong clock put it in the future), so
    a file neither goes while it is being written nor outlives the rule."""
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    found = []
    for organisation in settings.registry.organisations:
        for path in never_taken(settings, organisation.code):
            try:
                if path.lstat().st_ctime < limit:
                    found.append(path)
            except FileNotFoundError:
                continue
    return found


def _notice_files(settings: Settings, engine: Engine, cutoff: date) -> list[Path]:
    """Notice files (and any temporary file a crash left) of nights before the cutoff. A file
    the ledger lists goes by the ledger's night; any other by the earlier of the date in its
    name and its modification time, so a file named for a later night still goes."""
    with engine.connect() as conn:
        listed = {(o, n if isinstance(n, date) else date.fromisoformat(n)) for o, n in
                  conn.execute(text("SELECT organisation, night FROM notice_ledger")).all()}  # fmt: skip
    # Each organisation's notices folder: the registry's, and any other under OUTBOX_ROOT
    # (an organisation since removed from the registry).
    folders = {settings.outbox_root / p.name / NOTICES_FOLDER: p.name for p in settings.outbox_root.glob("*")}
    folders |= {settings.outbox(o.code) / NOTICES_FOLDER: o.code for o in settings.registry.organisations}
    found = []
    for folder, organisation in folders.items():
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not p.is_file() or p.is_symlink():
                continue
            night = file_night(p)
            if night is None or (organisation, night) not in listed:
                night = min(night, modified_on(p)) if night else modified_on(p)
            if night < cutoff:
                found.append(p)
    return found


def _delete(conn: Connection, table: str, where: str, cutoff: date, dry_run: bool) -> int:
    # Table names and predicates are fixed strings above; the cutoff is a bound parameter.
    if dry_run:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), {"cutoff": cutoff}).scalar_one()
    return conn.execute(text(f"DELETE FROM {table} WHERE {where}"), {"cutoff": cutoff}).rowcount


@dataclass
class LedgerPaths:
    """What the file ledger says about files on disk, for aging them. Every night here is the
    earlier of the file's night (from its name) and the night it arrived, so a name cannot
    carry a file past its rule."""

    linked: dict[str, date]  # staging files linked into the index (only these may go)
    ledgered: set[str]  # every staging file the ledger names: any other is debris
    nights: dict[str, date]  # receipts and quarantine folders and files
    received: dict[tuple[str, str, str], date]  # (organisation, night, hash prefix): archive folders


def _ledger_paths(engine: Engine, settings: Settings) -> LedgerPaths:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT organisation, file_name, sha256, night, run_night, status, staged_path, receipt_path "
                "FROM file_ledger"
            )
        ).all()
    out = LedgerPaths({}, set(), {}, {})
    for organisation, name, sha, night, run_night, status, staged, receipt in rows:
        named = _as_date(night)
        night = min(named, _as_date(run_night)) if run_night else named
        if staged:
            out.ledgered.add(staged)
            if status == "linked":
                out.linked[staged] = night
        key = (organisation, named.isoformat(), sha[:16])
        out.received[key] = min(out.received.get(key, night), night)
        keys = []
        if status == "quarantined":
            # The same bytes quarantined on several nights share a folder, one file per
            # name: each file goes with its own night, the folder's note with the latest.
            folder = settings.quarantine_dir / organisation / sha[:16]
            keys += [str(folder), str(folder / name)]
        if receipt:  # the text receipt sits beside the JSON one
            keys += [receipt, receipt.removesuffix(".json") + ".txt"]
        for key_ in keys:
            out.nights[key_] = max(out.nights.get(key_, night), night)
    return out


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _archived(settings: Settings, cutoff: date, received: dict[tuple[str, str, str], date]) -> list[Path]:
    """Archive folders of nights before the cutoff, and within later nights each original
    (a folder per hash) the ledger says arrived before it."""
    found = list(dated_dirs(settings.archive_dir, "*/*", cutoff, ""))
    gone = set(found)
    if settings.archive_dir.is_dir():
        for folder in settings.archive_dir.glob("*/*/*"):
            if folder.parent in gone or not folder.is_dir():
                continue
            arrived = received.get((folder.parent.parent.name, folder.parent.name, folder.name))
            if arrived is not None and arrived < cutoff:
                found.append(folder)
    return found


def _airflow_db_clean(cutoff: date, dry_run: bool) -> dict[str, int]:
    """``airflow db clean`` before the cutoff; rows found per metadata table.

    Airflow's command is the supported way to prune its database; it prints, per table,
    "Checking table T" and "Found N rows meeting deletion criteria" (never the rows).
    """
    import subprocess
    import sys

    cmd = [
        sys.executable, "-m", "airflow", "db", "clean",
        "--clean-before-timestamp", f"{cutoff.isoformat()}T00:00:00+00:00",
        "--yes", "--skip-archive",
        *(["--dry-run"] if dry_run else []),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise TransientError(f"airflow db clean exited {done.returncode}; see its output in the task log")
    counts: dict[str, int] = {}
    table = None
    for line in done.stdout.splitlines():
        if m := re.match(r"Checking table (\S+)", line):
            table = m.group(1)
        elif (m := re.match(r"Found (\d+) rows meeting deletion criteria", line)) and table:
            counts[f"airflow.{table}"] = int(m.group(1))
    return counts


def _expire_unlinked(engine: Engine, cutoff: date, dry_run: bool) -> list[Path]:
    """Staged files never linked, of nights before ``cutoff``: marked expired in the ledger
    (so linkage stops looking for them) and returned for deletion."""
    where = "status = 'staged' AND night < :cutoff"
    with engine.begin() as conn:
        rows = conn.execute(text(f"SELECT staged_path FROM file_ledger WHERE {where}"), {"cutoff": cutoff}).all()
        if not dry_run:
            conn.execute(text(f"UPDATE file_ledger SET status = 'expired' WHERE {where}"), {"cutoff": cutoff})
    return [Path(r[0]) for r in rows if r[0] and Path(r[0]).exists()]


def _log_certificate(engine: Engine, outcomes: list[RuleOutcome], today: date) -> None:
    from childindex.index.models import DeletionLog

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(
            insert(DeletionLog),
            [
                {
                    "run_at": now,
                    "run_for": today,
                    "rule": o.rule,
                    "cutoff": date.fromisoformat(o.cutoff),
                    "rows_deleted": sum(o.rows_deleted.values()),
                    "files_deleted": o.files_deleted,
                    "dry_run": 0,
                }
                for o in outcomes
            ],
        )
