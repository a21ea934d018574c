"""Intake: receive, check and stage each complete file in an organisation's drop folder.

For each file: hash it and recognise a repeat delivery, check it (reading with the
contract's encoding and delimiter, dropping every column outside the contract, the row
rules, the file policy and the GX cross-check: :mod:`childindex.validation`), then write the
accepted rows, pseudonymised, to one Parquet file in the common staging layout
(:mod:`childindex.staging`). The original goes to the archive (loaded) or to quarantine
(rejected as a whole), byte for byte. Every outcome is recorded in the file ledger and in
a receipt in the organisation's outbox (each organisation has its own
drop folder, outbox, ledger rows, quarantine and row-count band: one never blocks another).

Nothing here logs or raises a value from a file: only names, counts, row numbers and rules.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childindex.contracts.contract import load_contract
from childindex.errors import FileRejected
from childindex.intake.discovery import MARKER_SUFFIX, pending_files
from childindex.receipts import Receipt, new_receipt, require_contract_name
from childindex.settings import Settings, private_dir
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
    """Process every complete file of one organisation; returns one count dict per file."""
    from childindex.index.ledger import Ledger

    ledger = Ledger(settings.index_url)
    results = []
    for path in pending_files(settings, organisation):
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
    return results


def process_file(
    settings: Settings, organisation: str, path: Path, night: date, ledger: Ledger, *, skip_row_count: bool = False
) -> IntakeResult:
    """Receive, check and stage one file; quarantine it when it is unusable as a whole.

    Raises KeyMismatch, before reading the file, when the configured key is not the index's.
    """
    from childindex.keys.epochs import check_key

    check_key(settings.index_url, settings.key, night)  # no pseudonym under a stranger key
    started = time.perf_counter()
    org = settings.registry.get(organisation)
    contract = load_contract(org.contract)
    receipt, file_night = new_receipt(org, contract, path, night)
    sha = receipt.sha256

    if ledger.already_loaded(organisation, sha):
        receipt.outcome = "duplicate"
        receipt.file_problems.append({"rule": "already_loaded", "detail": "a file with this SHA-256 was loaded before"})
        result = _finish(settings, ledger, receipt, file_night or night, night, "duplicate", None, started)
        # Under the night's folder, so the archive rule ages it out with the night.
        dest = settings.archive_dir / organisation / (file_night or night).isoformat() / "duplicates"
        _move(path, dest / f"{sha[:16]}-{path.name}")
        return result

    try:
        named_night = require_contract_name(contract, file_night)
        history = (
            [] if skip_row_count else ledger.recent_row_counts(organisation, settings.validation.row_count_history)
        )
        with validate_file(settings, org, contract, path, named_night, receipt, history) as checked:
            staged = write_staging(checked, settings, org, named_night, sha)
    except FileRejected as exc:
        receipt.reject(exc.rule, exc.detail)
        result = _finish(settings, ledger, receipt, file_night or night, night, "quarantined", None, started)
        _quarantine(settings, organisation, path, sha, exc.rule)
        return result

    receipt.accept()
    result = _finish(settings, ledger, receipt, named_night, night, "staged", staged, started)
    # The ledger row comes first: a crash before the move leaves the file in the drop folder,
    # and the rerun recognises it by its hash instead of staging it twice.
    _move(path, settings.archive_dir / organisation / named_night.isoformat() / path.name)
    return result


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
) -> IntakeResult:
    """The receipt in the outbox and the file's row in the ledger; the result for logs."""
    receipt_path = receipt.write(settings.outbox(receipt.organisation))
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


def _move(path: Path, dest: Path) -> None:
    """Move a drop-folder entry (a symlink as itself) and drop its completion marker."""
    private_dir(dest.parent)
    shutil.move(str(path), dest)
    marker = path.with_name(path.name + MARKER_SUFFIX)
    if marker.exists():
        marker.unlink()


def _quarantine(settings: Settings, organisation: str, path: Path, sha: str, rule: str) -> None:
    dest = settings.quarantine_dir / organisation / sha[:16] / path.name
    _move(path, dest)
    # Why it is here, for operators and for `childindex reprocess` later: hash and rule only.
    note = {"sha256": sha, "rule": rule, "organisation": organisation, "quarantined_at": datetime.now(UTC).isoformat()}
    (dest.parent / "quarantine.json").write_text(json.dumps(note) + "\n", encoding="utf-8")
