"""Time travel: years of deliveries through the real pipeline, retention on a simulated clock.

A :class:`~childindex.simulation.synthetic.lifecourse.Lifecourse` population lives for ``years``.
Every ``delivery_days`` each organisation delivers what changed (intake, then linkage, exactly
as a night runs them); every ``retention_days`` retention runs with the simulated day as
its clock. After each retention run :func:`audit` checks the policy from the data's side:
no row and no file older than its rule allows, judged from dates in the rows and in the
file names (not from the rules' own SQL). After each delivery the index is compared with
the simulation's truth: every involvement still open is there (retention never deleted too
much), and the children in the index are no more than those the policy still covers.

Counts only: the result holds sizes, counts and dates, never a child's data.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from childindex.errors import UsageError
from childindex.notices.files import NOTICES_FOLDER
from childindex.settings import Settings
from childindex.simulation.synthetic.lifecourse import Lifecourse
from childindex.simulation.synthetic.noise import NoiseConfig

log = logging.getLogger(__name__)

HIGH_NOISE = NoiseConfig(typo=0.15, nickname=0.15, surname_change=0.05, dob_swap=0.05)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")


@dataclass
class Snapshot:
    """The index's size on one day."""

    day: str
    children: int
    source_records: int
    involvements: int
    rows: int  # every table of the index
    index_bytes: int
    data_bytes: int  # everything under the data directory


@dataclass
class SimulationResult:
    years: int
    children: int
    delivery_days: int
    retention_days: int
    deliveries: int = 0
    retention_runs: int = 0
    seconds: float = 0.0
    files: dict[str, int] = field(default_factory=dict)  # intake outcome -> files
    reviews_decided: int = 0  # review items the simulated clerk decided
    notices: int = 0  # notices sent (one per organisation and child)
    retractions: int = 0
    rows_deleted: dict[str, dict[str, int]] = field(default_factory=dict)  # rule -> table -> rows
    files_deleted: dict[str, int] = field(default_factory=dict)  # rule -> files
    peak: dict[str, int] = field(default_factory=dict)  # Snapshot field -> highest value
    first: Snapshot | None = None  # after the first retention run
    final: Snapshot | None = None
    violations: list[str] = field(default_factory=list)  # empty when every check held
    history: list[Snapshot] = field(default_factory=list)  # one per delivery

    def as_dict(self) -> dict:
        return asdict(self)


def simulate(
    settings: Settings,
    *,
    years: int = 20,
    children: int = 300,
    seed: int = 7,
    first_night: date = date(2026, 11, 24),
    delivery_days: int = 91,
    retention_days: int = 7,
    high_noise: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run the simulation in ``settings``' data directory (which must hold no index yet).

    ``high_noise``: five times the usual typos and nicknames, so that linkage sends pairs
    to the review queue and the clerk's decisions (and their retention) happen even in a
    small population."""
    from childindex.index.db import migrate
    from childindex.intake.process import run_intake
    from childindex.linkage.night import link_pending
    from childindex.notices.night import send_notices
    from childindex.retention.run import run_retention

    started = time.perf_counter()
    settings.ensure_dirs()
    migrate(settings.index_url)
    if _count(settings, "file_ledger") or _count(settings, "child"):
        raise ValueError(
            f"the index at {settings.data_dir} is not empty: time travel needs a data directory of its own"
        )
    life = Lifecourse(
        children,
        years,
        registry=settings.registry,
        seed=seed,
        first_night=first_night,
        noise=HIGH_NOISE if high_noise else None,
    )
    clerk = Clerk(settings)
    result = SimulationResult(years, children, delivery_days, retention_days)
    # Retention's slack: a record is last sent up to one delivery period before it ends.
    grace = settings.retention.record_unseen_days + delivery_days + retention_days
    for n in range(life.horizon + 1):
        day = first_night + timedelta(days=n)
        if n % delivery_days == 0:
            _, truth = life.deliver(settings.drop_root, n)
            clerk.learn(truth)
            for org in settings.registry.organisations:
                for outcome in run_intake(settings, org.code, day):
                    result.files[outcome["outcome"]] = result.files.get(outcome["outcome"], 0) + 1
                    if outcome["outcome"] == "rejected":
                        log.warning("time travel: %s quarantined on %s", outcome["file_name"], day)
            link_pending(settings, day)
            told = send_notices(settings, day)
            result.notices += told.notices
            result.retractions += told.retractions
            result.reviews_decided += clerk.decide_open_items(day)
            result.deliveries += 1
            snap = snapshot(settings, day)
            result.history.append(snap)
            result.violations += _against_truth(settings, life, n, day, grace, snap)
        if n % retention_days == 0:
            cert = run_retention(settings, day)
            result.retention_runs += 1
            for rule in cert["rules"]:
                rows = result.rows_deleted.setdefault(rule["rule"], {})
                for table, count in rule["rows_deleted"].items():
                    rows[table] = rows.get(table, 0) + count
                result.files_deleted[rule["rule"]] = result.files_deleted.get(rule["rule"], 0) + rule["files_deleted"]
            result.violations += [f"{day}: {v}" for v in audit(settings, day)]
            snap = snapshot(settings, day)
            result.first = result.first or snap
            result.final = snap
            for key, value in asdict(snap).items():
                if isinstance(value, int):
                    result.peak[key] = max(result.peak.get(key, 0), value)
        if progress:
            progress(n, life.horizon)
    result.seconds = round(time.perf_counter() - started, 1)
    log.info(
        "time travel: %d years, %d deliveries, %d retention runs, %d violations, %.0f s",
        years,
        result.deliveries,
        result.retention_runs,
        len(result.violations),
        result.seconds,
    )
    return result


class Clerk:
    """A reviewer who works the clerical review queue at each delivery, deciding every
    open item from the simulation's truth (so decisions, and their retention, happen)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.person: dict[str, int] = {}  # source key -> true person

    def learn(self, truth: Any) -> None:
        """``truth``: the delivery's ground truth, a pyarrow table."""
        from childindex.staging.pseudonymise import hmac_hex, local_id_domain

        key = self.settings.key
        for organisation, local_id, person in zip(
            truth["organisation"].to_pylist(),
            truth["local_id"].to_pylist(),
            truth["person_id"].to_pylist(),
            strict=True,
        ):  # a few rows a delivery: harness code, not a pipeline path
            self.person[hmac_hex(key, local_id_domain(organisation), local_id)] = person

    def decide_open_items(self, day: date) -> int:
        from datetime import datetime, time

        from childindex.linkage.review import decide

        url = self.settings.index_url
        with _connect(self.settings) as conn:
            items = conn.execute(text("SELECT id, new_key, other_key FROM review_item WHERE status = 'open'")).all()
        decided = 0
        for item_id, a, b in items:
            if a not in self.person or b not in self.person:
                continue
            same = self.person[a] == self.person[b]
            try:
                decide(
                    url, item_id, "match" if same else "non_match", "time-travel clerk", datetime.combine(day, time(9))
                )
            except UsageError:  # answered by the decision on the same pair
                continue
            decided += 1
        return decided


def audit(settings: Settings, today: date) -> list[str]:
    """Everything that has outlived the retention policy on ``today`` (empty: nothing)."""
    r = settings.retention

    def before(days: int) -> date:
        return today - timedelta(days=days)

    checks = {
        "an involvement ended past its period": (
            "SELECT count(*) FROM involvement WHERE end_date < :c",
            before(r.involvement_ended_days),
        ),
        "a record unseen past its period, with its involvement over or its organisation silent": (
            "SELECT count(*) FROM source_record s WHERE s.last_seen < :c AND NOT ("
            " EXISTS (SELECT 1 FROM involvement i WHERE i.source_key = s.source_key"
            "  AND (i.end_date IS NULL OR i.end_date >= :c))"
            " AND EXISTS (SELECT 1 FROM file_ledger f WHERE f.organisation = s.organisation AND f.night >= :c))",
            before(r.record_unseen_days),
        ),
        "a child past the age served": ("SELECT count(*) FROM child WHERE date_of_birth < :c", before(r.over_age_days)),
        "a record of a child past the age served": (
            "SELECT count(*) FROM source_record WHERE date_of_birth < :c",
            before(r.over_age_days),
        ),
        "a child with no organisation's record": (
            "SELECT count(*) FROM child c WHERE NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.child_id = c.child_id)",
            None,
        ),
        "an involvement or review item without its record": (
            "SELECT (SELECT count(*) FROM involvement i WHERE NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = i.source_key))"
            " + (SELECT count(*) FROM review_item v WHERE NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = v.new_key) OR NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = v.other_key))",
            None,
        ),
        "an involvement whose child is not its record's": (
            "SELECT count(*) FROM involvement i JOIN source_record s ON s.source_key = i.source_key"
            " WHERE s.child_id <> i.child_id",
            None,
        ),
        "a decision about a record that has gone": (
            "SELECT count(*) FROM link_decision d WHERE (NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = d.key_a) OR NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = d.key_b))",
            None,
        ),
        "a merge or split leading to no child": (
            "SELECT count(*) FROM child_id_history h WHERE NOT EXISTS"
            " (SELECT 1 FROM child c WHERE c.child_id = h.new_child_id) AND NOT EXISTS"
            " (SELECT 1 FROM child_id_history g WHERE g.old_child_id = h.new_child_id)",
            None,
        ),
        "a decided review item past its period": (
            "SELECT count(*) FROM review_item WHERE status = 'decided' AND resolved_at < :c",
            before(r.review_resolved_days),
        ),
        "what a notice told of a record that has gone, or a notice pending for one": (
            "SELECT (SELECT count(*) FROM notice_told t WHERE NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = t.recipient_key) OR NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = t.other_key))"
            " + (SELECT count(*) FROM notice_pending p WHERE NOT EXISTS"
            " (SELECT 1 FROM source_record s WHERE s.source_key = p.source_key))",
            None,
        ),
        "a notice ledger row past its period": (
            "SELECT count(*) FROM notice_ledger WHERE night < :c",
            before(r.notices_days),
        ),
        "a ledger, metric or deletion-log row past its period": (
            "SELECT (SELECT count(*) FROM file_ledger WHERE night < :c AND status <> 'staged')"
            " + (SELECT count(*) FROM night_metric WHERE night < :c)"
            " + (SELECT count(*) FROM deletion_log WHERE run_for < :c)",
            before(r.reports_days),
        ),
    }
    found = []
    with _connect(settings) as conn:
        for what, (sql, cutoff) in checks.items():
            n = conn.execute(text(sql), {"c": cutoff} if cutoff else {}).scalar_one()
            if n:
                found.append(f"{n} x {what}")
    found += _files_past_policy(settings, today)
    return found


def _files_past_policy(settings: Settings, today: date) -> list[str]:
    """Files older than their rule, dated by the night in their path or name."""
    r = settings.retention
    roots = {
        "archived extract": (settings.archive_dir, r.archive_days),
        "quarantined file": (settings.quarantine_dir, r.quarantine_days),
        "receipt": (settings.outbox_root, r.receipts_days),
        "notice file": (settings.outbox_root, r.notices_days),
        "report": (settings.reports_dir, r.reports_days),
        "staged file": (settings.staging_dir, r.staging_days),
    }
    found = []
    for what, (root, days) in roots.items():
        assert root is not None
        cutoff = today - timedelta(days=days)
        old = 0
        for path in root.rglob("*"):
            # Notice files are in each outbox's notices/ folder, under their own rule.
            if not path.is_file() or (NOTICES_FOLDER in path.parts) != (what == "notice file"):
                continue
            night = _night_of(path, root)
            if night is None:
                found.append(f"a {what} with no night in its path")
            elif night < cutoff and not (what == "staged file" and _unlinked(settings, path, today)):
                old += 1
        if old:
            found.append(f"{old} x {what} past its period")
    return found


def _night_of(path: Path, root: Path) -> date | None:
    """The night a file belongs to: an ISO date anywhere in its path below ``root``, else
    a compact one (YYYYMMDD) in its name (for a quarantine note, its neighbour's name).
    Hash-named folders are never read for a compact date: hex digits can look like one."""
    parts = path.relative_to(root).parts
    names = [path.name]
    if path.name == "quarantine.json":
        names += [p.name for p in path.parent.iterdir() if p != path]
    for pattern, where in ((_ISO_DATE, parts), (_COMPACT_DATE, names)):
        for name in where:
            if m := pattern.search(name):
                try:
                    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                except ValueError:
                    continue
    return None


def _unlinked(settings: Settings, path: Path, today: date) -> bool:
    """A staged file not linked yet is kept (up to the record period): not a violation."""
    with _connect(settings) as conn:
        row = conn.execute(
            text("SELECT night FROM file_ledger WHERE staged_path = :p AND status = 'staged'"), {"p": str(path)}
        ).first()
    if row is None:
        return False
    night = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
    return night >= today - timedelta(days=settings.retention.record_unseen_days)


def _against_truth(settings: Settings, life: Lifecourse, n: int, day: date, grace: int, snap: Snapshot) -> list[str]:
    """After a delivery: the open involvements are all there; the children are not too many."""
    found = []
    with _connect(settings) as conn:
        open_now = conn.execute(text("SELECT count(*) FROM involvement WHERE end_date IS NULL")).scalar_one()
    expected = life.open_involvements(n)
    if open_now != expected:
        found.append(f"{day}: {open_now} open involvements in the index, {expected} in truth")
    in_scope = life.people_in_scope(n, grace)
    # Linkage may leave a child's records apart (a missed link): 2% slack.
    if snap.children > in_scope * 1.02 + 2:
        found.append(f"{day}: {snap.children} children in the index, only {in_scope} still covered by the policy")
    return found


def snapshot(settings: Settings, day: date) -> Snapshot:
    from childindex.index.models import Base

    with _connect(settings) as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in Base.metadata.tables}
    index_file = _sqlite_path(settings)
    data_bytes = sum(p.stat().st_size for p in settings.data_dir.rglob("*") if p.is_file())
    return Snapshot(
        day=day.isoformat(),
        children=counts["child"],
        source_records=counts["source_record"],
        involvements=counts["involvement"],
        rows=sum(counts.values()),
        index_bytes=index_file.stat().st_size if index_file else 0,
        data_bytes=data_bytes,
    )


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.index_url or ""
    return Path(url.split("///", 1)[1]) if url.startswith("sqlite:///") else None


def _connect(settings: Settings) -> Connection:
    from childindex.index.db import engine_for

    return engine_for(settings.index_url).connect()


def _count(settings: Settings, table: str) -> int:
    with _connect(settings) as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
