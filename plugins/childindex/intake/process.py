"""Intake: receive, check and stage each complete file in an organisation's drop folder.

For each file: read it once into a private copy, hashing as it reads
(:mod:`childindex.intake.receive`), and recognise a repeat delivery; check the copy (reading
with the contract's encoding and delimiter, dropping every column outside the contract, the
row rules, the file policy and the GX cross-check: :mod:`childindex.validation`), then write
the accepted rows, pseudonymised, to one Parquet file in the common staging layout
(:mod:`childindex.staging`). The bytes read go to the archive (loaded) or to quarantine
(rejected as a whole) under a name that carries their hash, never over another file. Every
outcome is recorded in the file ledger and in a receipt in the organisation's outbox (each
organisation has its own drop folder, outbox, ledger rows, quarantine and row-count band:
one never blocks another).

The order makes every step safe to interrupt: everything is written first (staging file,
archive copy), then the receipt and the ledger row, and only then does the file leave the
drop folder. A failure (a full disk: one DiskFull line) removes what the attempt wrote; a
kill leaves debris that the organisation's next intake removes before it starts.

Nothing here logs or raises a value from a file: only names, counts, row numbers and rules.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childindex.contracts.contract import load_contract
from childindex.errors import FileRejected
from childindex.intake.discovery import MARKER_SUFFIX, WAITING_METRIC, Waiting, scan_drop_folder
from childindex.intake.receive import (
    Received,
    clear_debris,
    clear_work,
    disk_step,
    intake_folder,
    keep_copy,
    move_entry,
    receive,
)
from childindex.receipts import Receipt, new_receipt, require_contract_name, safe_name
from childindex.safe_paths import write_inside
from childindex.settings import Settings
from childindex.staging.writer import write_staging
from childindex.validation.validate import validate_file

if TYPE_CHECKING:
    from childindex.index.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass
class IntakeResult:
    """Counts and paths only: safe for logs and XCom."""

    organisation: str
    file_name: str
    sha256: str
    outcome: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    staged_path: str | None
    receipt_path: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_intake(settings: Settings, organisation: str, night: date) -> list[dict[str, Any]]:
    """Process every complete file of one organisation; returns one count dict per file.

    A file that cannot be read, or is not a file, gets its receipt and the next one goes on.
    Files still waiting for their completion are counted for the night (:func:`intake_organisation`)."""
    return intake_organisation(settings, organisation, night).results


@dataclass
class OrganisationIntake:
    """One organisation's intake: a count dict per file processed, and its files still waiting."""

    results: list[dict[str, Any]]
    waiting: Waiting


def intake_organisation(
    settings: Settings, organisation: str, night: date, now: float | None = None
) -> OrganisationIntake:
    """Process every complete file of one organisation, and record for the night how many of
    its files wait for their completion and how long the oldest has waited (``now``: the
    clock the waits are measured by, the wall clock by default)."""
    from childindex.index.ledger import Ledger

    ledger = Ledger(settings.index_url)
    folder = scan_drop_folder(settings, organisation, now)
    record_waiting(settings, night, {organisation: folder.waiting})
    if folder.waiting.files:
        log.info("intake %s: %s", organisation, folder.waiting.describe())
    results = []
    for path in folder.complete:
        result = process_file(settings, organisation, path, night, ledger)
        log.info(
            "intake %s: %s rows read=%d accepted=%d rejected=%d",
            organisation,
            result.outcome,
            result.rows_read,
            result.rows_accepted,
            result.rows_rejected,
        )
        results.append(result.as_dict())
    return OrganisationIntake(results, folder.waiting)


def record_waiting(settings: Settings, night: date, waiting: dict[str, Waiting]) -> None:
    """The night's waiting files per organisation (count, stuck count, oldest wait in hours)
    as night metrics, replacing what an earlier run of the night saw: zeros included, so a
    file taken since no longer shows."""
    from childindex.index.store import put_metrics

    metrics: dict[str, float] = {}
    for code, w in waiting.items():
        metrics[f"{WAITING_METRIC}{code}:files"] = float(w.files)
        metrics[f"{WAITING_METRIC}{code}:stuck"] = float(w.stuck)
        metrics[f"{WAITING_METRIC}{code}:oldest_hours"] = float(w.oldest_hours)
    put_metrics(settings.index_url, night, metrics)


def process_file(
    settings: Settings, organisation: str, path: Path, night: date, ledger: Ledger, *, skip_row_count: bool = False
) -> IntakeResult:
    """Receive, check and stage one file; quarantine it when it is unusable as a whole.

    Runs under the organisation's intake lock (a second intake of it waits: StageBusy after
    CHILDINDEX_LOCK_WAIT_SECONDS), after removing whatever a killed intake of it left.
    Raises KeyMismatch, before reading the file, when the configured key is not the index's,
    and DiskFull, having removed what it wrote and recorded nothing, when a disk fills.
    """
    from childindex.keys.epochs import check_key
    from childindex.locks import stage_lock

    check_key(settings.index_url, settings.key, night)  # no pseudonym under a stranger key
    work = intake_folder(settings, organisation)
    with stage_lock(settings, f"intake-{organisation}"):
        clear_debris(settings, organisation, ledger.staged_paths(organisation))
        try:
            return _process(settings, organisation, path, night, ledger, work, skip_row_count)
        finally:
            clear_work(work)


def _process(
    settings: Settings, organisation: str, path: Path, night: date, ledger: Ledger, work: Path, skip_row_count: bool
) -> IntakeResult:
    started = time.perf_counter()
    if not os.path.lexists(path):
        # Taken meanwhile by another try of this task (it held the lock), or withdrawn.
        log.warning("intake %s: %s is no longer in the drop folder; nothing to do", organisation, safe_name(path.name))
        return IntakeResult(organisation, safe_name(path.name), "", "gone", 0, 0, 0, None, "")
    org = settings.registry.get(organisation)
    contract = load_contract(org.contract)
    received = receive(path, work)
    receipt, file_night = new_receipt(org, contract, path, night, sha256=received.sha256, size=received.size)
    # A name cannot date a row, a receipt or a copy later than the night it arrived.
    kept_night = min(file_night or night, night)
    if received.problem is not None:
        return _reject(settings, ledger, receipt, received, kept_night, night, received.problem, started)
    assert received.copy is not None
    sha = received.sha256

    if ledger.already_loaded(organisation, sha):
        receipt.outcome = "duplicate"
        receipt.file_problems.append({"rule": "already_loaded", "detail": "a file with this SHA-256 was loaded before"})
        # Kept under the night's folder (once: the name carries the hash), so the archive
        # rule ages it out with the night.
        archived = archive_path(settings, organisation, kept_night, sha, path.name)
        with disk_step("keeping the delivery in the archive", settings.archive_dir):
            written = [archived] if keep_copy(received.copy, archived) else []
        result = _finish(settings, ledger, receipt, kept_night, night, "duplicate", None, started, written)
        _remove_entry(path)
        return result

    try:
        named_night = require_contract_name(contract, file_night, path.name)
        _check_night(settings, named_night, night)
        history = (
            [] if skip_row_count else ledger.recent_row_counts(organisation, settings.validation.row_count_history)
        )
        with disk_step("checking the file", settings.work_dir):
            with validate_file(
                settings, org, contract, received.copy, named_night, receipt, history, work_root=work
            ) as checked:
                with disk_step("writing its staging file", settings.staging_dir):
                    staged = write_staging(checked, settings, org, named_night, sha)
    except FileRejected as exc:
        return _reject(settings, ledger, receipt, received, kept_night, night, exc, started)

    written = [staged]
    try:
        if not received.unchanged():
            staged.unlink(missing_ok=True)
            written = []
            changed = FileRejected(
                "changed_during_intake",
                "the file changed while it was checked (it was still being written after its completion marker)",
            )
            return _reject(settings, ledger, receipt, received, kept_night, night, changed, started)
        # Every original is kept: its name in the archive carries its hash, so a corrected
        # re-send under the same name never overwrites the first.
        archived = archive_path(settings, organisation, named_night, sha, path.name)
        with disk_step("keeping the original in the archive", settings.archive_dir):
            if keep_copy(received.copy, archived):
                written.append(archived)
    except BaseException:
        _undo(written)
        raise
    receipt.accept()
    result = _finish(settings, ledger, receipt, named_night, night, "staged", staged, started, written)
    # Only now, with everything written and recorded, does the file leave the drop folder.
    _remove_entry(path)
    return result


def archive_path(settings: Settings, organisation: str, night: date, sha256: str, name: str) -> Path:
    """``ARCHIVE/<organisation>/<night>/<sha256 prefix>/<name>``: one per distinct content."""
    return settings.archive_dir / organisation / night.isoformat() / sha256[:16] / name


def _check_night(settings: Settings, named: date, night: date) -> None:
    """FileRejected when the name's night is further ahead of the run's than the tolerance."""
    ahead = (named - night).days
    if ahead > settings.validation.max_days_ahead:
        raise FileRejected(
            "night_ahead",
            f"the name gives a night {ahead} days after the night it arrived "
            f"(CHILDINDEX_VALIDATION__MAX_DAYS_AHEAD is {settings.validation.max_days_ahead})",
        )


# --------------------------------------------------------------------------- finishing


def _finish(
    settings: Settings,
    ledger: Ledger,
    receipt: Receipt,
    night: date,
    run_night: date,
    status: str,
    staged: Path | None,
    started: float,
    written: list[Path],
) -> IntakeResult:
    """The receipt in the outbox and the file's row in the ledger; the result for logs. If
    either fails, neither stays, nor what ``written`` lists (the staging file and copies this
    attempt made), so a retry starts clean."""
    outbox = settings.outbox(receipt.organisation)
    pattern = glob.escape(f"{receipt.file_name}.{receipt.sha256[:8]}.") + "*receipt.*"
    before = set(outbox.glob(pattern)) if outbox.is_dir() else set()
    try:
        with disk_step("writing the receipt", outbox):
            receipt_path = receipt.write(outbox)
        with disk_step("recording the file in the ledger", settings.data_dir):
            ledger.record(
                organisation=receipt.organisation,
                file_name=receipt.file_name,
                sha256=receipt.sha256,
                night=night,
                run_night=run_night,
                status=status,
                rows_read=receipt.rows_read,
                rows_accepted=receipt.rows_accepted,
                rows_rejected=receipt.rows_rejected,
                staged_path=str(staged) if staged else None,
                receipt_path=str(receipt_path),
                reason=",".join(p["rule"] for p in receipt.file_problems) or None,
                seconds=round(time.perf_counter() - started, 3),
            )
    except BaseException:
        # No receipt may claim what the ledger does not hold (nor half a receipt stay).
        _undo(sorted(set(outbox.glob(pattern)) - before) if outbox.is_dir() else [])
        _undo(written)
        raise
    return IntakeResult(
        organisation=receipt.organisation,
        file_name=receipt.file_name,
        sha256=receipt.sha256,
        outcome=receipt.outcome,
        rows_read=receipt.rows_read,
        rows_accepted=receipt.rows_accepted,
        rows_rejected=receipt.rows_rejected,
        staged_path=str(staged) if staged else None,
        receipt_path=str(receipt_path),
    )


def _reject(
    settings: Settings,
    ledger: Ledger,
    receipt: Receipt,
    received: Received,
    night: date,
    run_night: date,
    exc: FileRejected,
    started: float,
) -> IntakeResult:
    """Quarantine the file as received (the bytes read; an entry that could not be read, or
    changed meanwhile, as itself), with its receipt and ledger row."""
    receipt.reject_for(exc)  # every problem it carries
    organisation = receipt.organisation
    dest = settings.quarantine_dir / organisation / received.sha256[:16] / received.entry.name
    written: list[Path] = []
    keep_bytes = received.copy is not None and exc.rule != "changed_during_intake"
    with disk_step("keeping the file in quarantine", settings.quarantine_dir):
        if keep_bytes:
            assert received.copy is not None
            if keep_copy(received.copy, dest):
                written.append(dest)
        # Why it is here, for operators and for `childindex reprocess` later: hash and rule only.
        note = {"sha256": received.sha256, "rule": exc.rule, "organisation": organisation,
                "quarantined_at": datetime.now(UTC).isoformat()}  # fmt: skip
        write_inside(settings.quarantine_dir, dest.parent / "quarantine.json", json.dumps(note) + "\n")
    result = _finish(settings, ledger, receipt, night, run_night, "quarantined", None, started, written)
    if keep_bytes:
        _remove_entry(received.entry)
    elif exc.rule == "not_a_file":
        # No bytes to keep: a pipe, socket or device goes; a folder stays where it is (its
        # marker goes, so it is not taken again), never moved into quarantine whole.
        if not received.entry.is_dir() or received.entry.is_symlink():
            received.entry.unlink(missing_ok=True)
        _drop_marker(received.entry)
    else:
        # A link moves as itself (never followed); a file that changed keeps its latest bytes.
        if not move_entry(received.entry, dest) and received.copy is not None and keep_copy(received.copy, dest):
            _remove_entry(received.entry)
        _drop_marker(received.entry)
    return result


def _remove_entry(path: Path) -> None:
    """The drop-folder entry and its completion marker, once intake is done with them."""
    path.unlink(missing_ok=True)
    _drop_marker(path)


def _drop_marker(path: Path) -> None:
    path.with_name(path.name + MARKER_SUFFIX).unlink(missing_ok=True)


def _undo(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
