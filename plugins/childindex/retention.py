"""Retention: delete what is stale, each rule in its own transaction, and certify it.

The periods come from settings (``CHILDINDEX_RETENTION__*``). Every run writes a deletion
certificate, ``REPORTS_DIR/retention/certificate-YYYY-MM-DD.json``: rule, cutoff, rows
deleted per table and files deleted. Counts only, never a child's data. ``today`` is
injectable (the DAG passes its logical date), so a rerun of a day deletes the same things.
"""

from __future__ import annotations

import json
import logging
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


def run_retention(settings: Settings, today: date, dry_run: bool = False) -> dict:
    """Apply every rule; returns the certificate (also written to disk unless dry run)."""
    from childindex.index.db import engine_for

    r = settings.retention
    engine = engine_for(settings.index_url)
    outcomes: list[RuleOutcome] = []

    def rows_rule(name: str, days: int, statements: list[tuple[str, str]]) -> None:
        cutoff = today - timedelta(days=days)
        outcome = RuleOutcome(name, cutoff.isoformat())
        with engine.begin() as conn:
            for table, where in statements:
                outcome.rows_deleted[table] = _delete(conn, table, where, cutoff, dry_run)
        outcomes.append(outcome)

    rows_rule(
        "involvement_ended", r.involvement_ended_days, [("involvement", "end_date IS NOT NULL AND end_date < :cutoff")]
    )
    rows_rule(
        "record_unseen",
        r.record_unseen_days,
        [
            ("involvement", "source_key IN (SELECT source_key FROM source_record WHERE last_seen < :cutoff)"),
            (
                "review_item",
                "new_key IN (SELECT source_key FROM source_record WHERE last_seen < :cutoff) "
                "OR other_key IN (SELECT source_key FROM source_record WHERE last_seen < :cutoff)",
            ),
            ("source_record", "last_seen < :cutoff"),
            # A person's decision about a pair goes once either record has gone.
            (
                "link_decision",
                "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_a) "
                "OR NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_b)",
            ),
        ],
    )
    # A child with no source record left is no longer known to any agency.
    rows_rule(
        "child_orphaned",
        0,
        [
            (
                "child",
                "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.child_id = child.child_id) AND last_seen <= :cutoff",
            ),
        ],
    )

    def files_rule(name: str, days: int, paths: Callable[[date], Iterable[Path]]) -> None:
        cutoff = today - timedelta(days=days)
        outcome = RuleOutcome(name, cutoff.isoformat())
        for path in list(paths(cutoff)):
            outcome.files_deleted += _remove(path, dry_run)
        outcomes.append(outcome)

    linked = _loaded_staging(settings)
    files_rule("archive", r.archive_days, lambda c: _dated_dirs(settings.archive_dir, "*/*", c, ""))
    files_rule(
        "staging",
        r.staging_days,
        lambda c: (
            p
            for d in _dated_dirs(settings.staging_dir, "agency=*/night=*", c, "night=")
            for p in d.glob("*.parquet")
            if str(p) in linked
        ),
    )
    files_rule("quarantine", r.quarantine_days, lambda c: _older_files(settings.quarantine_dir, c))
    files_rule("receipts", r.receipts_days, lambda c: _older_files(settings.outbox_root, c))
    files_rule("reports", r.reports_days, lambda c: _older_files(settings.reports_dir, c))
    # Only what a crash left behind: an intake running now keeps its work folder.
    files_rule("working_files", 1, lambda c: _older_files(settings.work_dir, c))
    if not dry_run:
        _reclaim(engine)

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
        _log_certificate(engine, outcomes)
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


def _loaded_staging(settings: Settings) -> set[str]:
    """Staging files already linked into the index: only these may be deleted."""
    from childindex.index.db import engine_for

    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            text("SELECT staged_path FROM file_ledger WHERE status = 'linked' AND staged_path IS NOT NULL")
        ).all()
    return {r[0] for r in rows}


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


def _older_files(root: Path | None, cutoff: date) -> Iterable[Path]:
    if root is None or not root.exists():
        return []
    limit = datetime.combine(cutoff, datetime.min.time(), UTC).timestamp()
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_mtime < limit]


def _remove(path: Path, dry_run: bool) -> int:
    if path.is_dir():
        n = sum(1 for p in path.rglob("*") if p.is_file())
        if not dry_run:
            shutil.rmtree(path)
        return n
    if not dry_run:
        path.unlink(missing_ok=True)
    return 1


def _reclaim(engine) -> None:  # noqa: ANN001
    """Return freed pages to the OS (SQLite); PostgreSQL reclaims with autovacuum."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("VACUUM")


def _log_certificate(engine, outcomes: list[RuleOutcome]) -> None:  # noqa: ANN001
    from childindex.index.models import DeletionLog

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(
            DeletionLog.__table__.insert(),
            [
                {
                    "run_at": now,
                    "rule": o.rule,
                    "cutoff": date.fromisoformat(o.cutoff),
                    "rows_deleted": sum(o.rows_deleted.values()),
                    "files_deleted": o.files_deleted,
                    "dry_run": 0,
                }
                for o in outcomes
            ],
        )
