"""Retention: delete what is stale, each rule in its own transaction, and certify it.

The rules, their purposes and default periods are listed in ``retention_policy.yaml``;
each period can be changed with its setting (``CHILDINDEX_RETENTION__*``). Every run writes a deletion
certificate, ``REPORTS_DIR/retention/certificate-YYYY-MM-DD.json``: rule, cutoff, rows
deleted per table and files deleted. Counts only, never a child's data. ``today`` is
injectable (the DAG passes its logical date), so a rerun of a day deletes the same things.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from childindex.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    rule: str
    cutoff: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    files_deleted: int = 0
    skipped: str | None = None  # why a rule did not run


@dataclass(frozen=True)
class Rule:
    """One entry of retention_policy.yaml."""

    name: str
    kind: str  # rows | files
    setting: str | None  # RetentionSettings field holding the period, if it can be changed
    period_days: int  # the default period
    purpose: str
    deletes: tuple[str, ...]

    def period(self, settings: Settings) -> int:
        return getattr(settings.retention, self.setting) if self.setting else self.period_days


def policy() -> list[Rule]:
    """The retention rules, in the order they run."""
    import yaml

    from childindex.settings import RETENTION_POLICY

    data = yaml.safe_load(RETENTION_POLICY.read_text(encoding="utf-8"))
    return [
        Rule(r["name"], r["kind"], r.get("setting"), int(r["period_days"]), " ".join(r["purpose"].split()),
             tuple(r["deletes"]))
        for r in data["rules"]
    ]  # fmt: skip


def policy_markdown(settings: Settings | None = None) -> str:
    """The policy as a Markdown table (docs/retention.md holds it; a test compares)."""
    lines = [
        "| rule | deletes | after (days) | setting | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in policy():
        days = r.period(settings) if settings else r.period_days
        setting = f"`CHILDINDEX_RETENTION__{r.setting.upper()}`" if r.setting else "fixed"
        lines.append(f"| `{r.name}` | {', '.join(r.deletes)} | {days} | {setting} | {r.purpose} |")
    return "\n".join(lines) + "\n"


_ORPHANED_DECISIONS = (
    "link_decision",
    "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_a) "
    "OR NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_b)",
)


def _records_of(where: str) -> list[tuple[str, str]]:
    """Delete statements for every row tied to the source records matching ``where``."""
    keys = f"(SELECT source_key FROM source_record WHERE {where})"
    return [
        ("involvement", f"source_key IN {keys}"),
        ("review_item", f"new_key IN {keys} OR other_key IN {keys}"),
        ("source_record", where),
        _ORPHANED_DECISIONS,
    ]


# Rules that delete rows: (table, predicate) in order, one transaction per rule. Table
# names and predicates are fixed strings; the cutoff is a bound parameter.
#
# Agencies send deltas: a record is re-sent only when it changes, so "unseen" alone would
# delete every child whose involvement simply goes on. A record counts as stale when it was
# last sent before the cutoff and either its involvement ended (or was deleted) or its
# agency has delivered nothing since the cutoff (a system switched off never closes its
# records).
_STALE = (
    "last_seen < :cutoff AND NOT ("
    "EXISTS (SELECT 1 FROM involvement i WHERE i.source_key = source_record.source_key "
    "AND (i.end_date IS NULL OR i.end_date >= :cutoff)) "
    "AND EXISTS (SELECT 1 FROM file_ledger f WHERE f.agency = source_record.agency AND f.night >= :cutoff))"
)
_OVER_AGE = "child_id IN (SELECT child_id FROM child WHERE date_of_birth < :cutoff)"
# A merge or split is worth following only while the id it leads to is in the index (or
# leads on to one): one pass removes the last link of each dead chain, so the rule repeats.
_DEAD_HISTORY = (
    "NOT EXISTS (SELECT 1 FROM child c WHERE c.child_id = child_id_history.new_child_id) "
    "AND NOT EXISTS (SELECT 1 FROM child_id_history h WHERE h.old_child_id = child_id_history.new_child_id)"
)
ROW_RULES: dict[str, list[tuple[str, str]]] = {
    "involvement_ended": [("involvement", "end_date IS NOT NULL AND end_date < :cutoff")],
    "record_unseen": _records_of(_STALE),
    "child_over_age": [*_records_of(_OVER_AGE), ("child", "date_of_birth < :cutoff")],
    "child_orphaned": [
        (
            "child",
            "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.child_id = child.child_id) AND last_seen <= :cutoff",
        )
    ],
    "history_orphaned": [("child_id_history", _DEAD_HISTORY)],
    "review_resolved": [("review_item", "status = 'decided' AND resolved_at < :cutoff")],
    # Counts and hashes only; a staged file's row stays until it is linked or expires.
    "operational_records": [
        ("file_ledger", "night < :cutoff AND status <> 'staged'"),
        ("night_metric", "night < :cutoff"),
        ("deletion_log", "run_for < :cutoff"),
    ],
}
REPEAT_UNTIL_DONE = {"history_orphaned"}


def run_retention(settings: Settings, today: date, dry_run: bool = False, airflow: bool = False) -> dict:
    """Apply every rule of the policy; returns the certificate (also written to disk
    unless dry run). ``airflow``: also clean Airflow's metadata (inside Airflow only)."""
    from childindex.index.db import engine_for, reclaim

    engine = engine_for(settings.index_url)
    outcomes: list[RuleOutcome] = []
    linked, nights = _ledger_paths(settings)
    file_rules: dict[str, Callable[[date], Iterable[Path]]] = {
        "archive": lambda c: _dated_dirs(settings.archive_dir, "*/*", c, ""),
        "staging": lambda c: (
            p
            for d in _dated_dirs(settings.staging_dir, "agency=*/night=*", c, "night=")
            for p in d.glob("*.parquet")
            if str(p) in linked
        ),
        "staging_unlinked": lambda c: _expire_unlinked(settings, c, dry_run),
        "quarantine": lambda c: _files_before(settings.quarantine_dir, c, nights),
        "receipts": lambda c: _files_before(settings.outbox_root, c, nights),
        "reports": lambda c: _files_before(settings.reports_dir, c, nights),
        # Only what a crash left behind: an intake running now keeps its work folder.
        "working_files": lambda c: _older_files(settings.work_dir, c),
    }
    for rule in policy():
        cutoff = today - timedelta(days=rule.period(settings))
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
                outcome.files_deleted += _remove(path, dry_run)
        outcomes.append(outcome)
    if not dry_run:
        # Folders named by a file's hash or a night say which files were there: once
        # empty, they go too.
        for root in (settings.quarantine_dir, settings.staging_dir):
            _prune_empty(root)
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
        assert settings.reports_dir is not None
        path = settings.reports_dir / "retention" / f"certificate-{today.isoformat()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(certificate, indent=2) + "\n", encoding="utf-8")
    log.info(
        "retention for %s: %d rows, %d files deleted (dry run: %s)",
        today,
        certificate["rows_deleted"],
        certificate["files_deleted"],
        dry_run,
    )
    return certificate


def _delete(conn: Connection, table: str, where: str, cutoff: date, dry_run: bool) -> int:
    # Table names and predicates are fixed strings above; the cutoff is a bound parameter.
    if dry_run:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), {"cutoff": cutoff}).scalar_one()
    return conn.execute(text(f"DELETE FROM {table} WHERE {where}"), {"cutoff": cutoff}).rowcount


def _ledger_paths(settings: Settings) -> tuple[set[str], dict[str, date]]:
    """(staging files already linked into the index: only these may be deleted; the night
    of each receipt and quarantine folder the ledger knows, to age them by)."""
    from childindex.index.db import engine_for

    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            text("SELECT agency, file_name, sha256, night, status, staged_path, receipt_path FROM file_ledger")
        ).all()
    linked, nights = set(), {}
    assert settings.quarantine_dir is not None
    for agency, name, sha, night, status, staged, receipt in rows:
        if status == "linked" and staged:
            linked.add(staged)
        night = night if isinstance(night, date) else date.fromisoformat(night)
        keys = []
        if status == "quarantined":
            # The same bytes quarantined on several nights share a folder, one file per
            # name: each file goes with its own night, the folder's note with the latest.
            folder = settings.quarantine_dir / agency / sha[:16]
            keys += [str(folder), str(folder / name)]
        if receipt:  # the text receipt sits beside the JSON one
            keys += [receipt, receipt.removesuffix(".json") + ".txt"]
        for key in keys:
            nights[key] = max(nights.get(key, night), night)
    return linked, nights


def _airflow_db_clean(cutoff: date, dry_run: bool) -> dict[str, int]:
    """``airflow db clean`` before the cutoff; rows found per metadata table.

    Airflow's command is the supported way to prune its database; it prints, per table,
    "Checking table T" and "Found N rows meeting deletion criteria" (never the rows).
    """
    import re
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
        raise RuntimeError(f"airflow db clean exited {done.returncode}; see its output in the task log")
    counts: dict[str, int] = {}
    table = None
    for line in done.stdout.splitlines():
        if m := re.match(r"Checking table (\S+)", line):
            table = m.group(1)
        elif (m := re.match(r"Found (\d+) rows meeting deletion criteria", line)) and table:
            counts[f"airflow.{table}"] = int(m.group(1))
    return counts


def _expire_unlinked(settings: Settings, cutoff: date, dry_run: bool) -> list[Path]:
    """Staged files never linked, of nights before ``cutoff``: marked expired in the ledger
    (so linkage stops looking for them) and returned for deletion."""
    from childindex.index.db import engine_for

    where = "status = 'staged' AND night < :cutoff"
    with engine_for(settings.index_url).begin() as conn:
        rows = conn.execute(text(f"SELECT staged_path FROM file_ledger WHERE {where}"), {"cutoff": cutoff}).all()
        if not dry_run:
            conn.execute(text(f"UPDATE file_ledger SET status = 'expired' WHERE {where}"), {"cutoff": cutoff})
    return [Path(r[0]) for r in rows if r[0] and Path(r[0]).exists()]


def _dated_dirs(root: Path | None, pattern: str, cutoff: date, prefix: str) -> Iterable[Path]:
    """Folders named by a night (optionally after a prefix) older than the cutoff."""
    if root is None or not root.exists():
        return []
    found = []
    for d in root.glob(pattern):
        try:
            night = date.fromisoformat(d.name.removeprefix(prefix))
        except ValueError:
            continue
        if d.is_dir() and night < cutoff:
            found.append(d)
    return found


def _older_files(root: Path | None, cutoff: date) -> list[Path]:
    if root is None or not root.exists():
        return []
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_mtime < limit]


_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def _files_before(root: Path | None, cutoff: date, nights: dict[str, date]) -> list[Path]:
    """Files under ``root`` of nights before ``cutoff``. A file's night is the ledger's for
    it or its folder, else the date in its name (reports), else its modification time (a
    file the ledger never knew): never the wall clock where the night is known, so a rerun
    or a simulated clock deletes the same files."""
    if root is None or not root.exists():
        return []
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    found = []
    for p in root.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        night = nights.get(str(p)) or nights.get(str(p.parent))
        if night is None and (m := _DATE_IN_NAME.search(p.name)):
            try:
                night = date.fromisoformat(m.group(1))
            except ValueError:
                night = None
        if night is not None:
            if night < cutoff:
                found.append(p)
        elif p.stat().st_mtime < limit:
            found.append(p)
    return found


def _remove(path: Path, dry_run: bool) -> int:
    if path.is_dir():
        n = sum(1 for p in path.rglob("*") if p.is_file())
        if not dry_run:
            shutil.rmtree(path)
        return n
    if not dry_run:
        path.unlink(missing_ok=True)
    return 1


def _prune_empty(root: Path | None) -> None:
    """Remove empty folders two levels below ``root`` (``<agency>/<file or night>``)."""
    if root is None or not root.exists():
        return
    for d in root.glob("*/*"):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _log_certificate(engine, outcomes: list[RuleOutcome], today: date) -> None:  # noqa: ANN001
    from childindex.index.models import DeletionLog

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(
            DeletionLog.__table__.insert(),
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
