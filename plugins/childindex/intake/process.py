"""Intake: pick up complete files from an agency's drop folder, check, pseudonymise, stage.

For each file: hash it, recognise a repeat delivery, read it with the contract's encoding
and delimiter, drop every column outside the contract (naming them in the receipt), apply
the schema-level rules, pseudonymise identifiers with the keyed HMAC and write the
accepted rows to one Parquet file in the common staging layout. The original goes to the
archive (loaded) or to quarantine (rejected as a whole), byte for byte. Every outcome is
recorded in the file ledger and in a receipt in the agency's outbox.

Nothing here logs or raises a value from a file: only names, counts, row numbers and rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from childindex.contracts.contract import Contract, load_contract
from childindex.errors import FileRejected
from childindex.receipts import Receipt
from childindex.settings import Settings
from childindex.staging.layout import STAGING_COLUMNS, staging_path
from childindex.validation.validate import GZIP_SUFFIX, STD, normalise_name_sql, safe_name, validate_file
from childindex.whitelist import SENSITIVE_SERVICE

log = logging.getLogger(__name__)

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"


@dataclass
class IntakeResult:
    """Counts and paths only: safe for logs and XCom."""

    agency: str
    file_name: str
    sha256: str
    outcome: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    staged_path: str | None
    receipt_path: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# --------------------------------------------------------------------------- discovery


def pending_files(settings: Settings, agency: str) -> list[Path]:
    """Files in the drop folder whose upload is complete under the contract's convention.

    A file still being uploaded (no ``.done`` marker yet, or still named ``*.part``) is
    never returned. Symlinks are returned (never followed) so that intake rejects them with a
    receipt, as it does files that do not match the contract's name pattern.
    """
    contract = load_contract(agency)
    folder = settings.drop_folder(agency)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or not (path.is_file() or path.is_symlink()):
            continue
        name = path.name
        if name.endswith(MARKER_SUFFIX) or name.endswith(PARTIAL_SUFFIX) or name.startswith("."):
            continue
        if contract.file.completion == "marker" and not path.with_name(name + MARKER_SUFFIX).exists():
            continue
        found.append(path)
    return found


def run_intake(settings: Settings, agency: str, night: date) -> list[dict]:
    """Process every complete file for one agency; returns one count dict per file."""
    from childindex.index.ledger import Ledger

    contract = load_contract(agency)
    ledger = Ledger(settings.index_url)
    results = []
    for path in pending_files(settings, agency):
        result = process_file(settings, contract, path, night, ledger)
        log.info(
            "intake %s: %s rows read=%d accepted=%d rejected=%d",
            agency,
            result.outcome,
            result.rows_read,
            result.rows_accepted,
            result.rows_rejected,
        )
        results.append(result.as_dict())
    return results


def reprocess(
    settings: Settings,
    agency: str,
    night: date,
    *,
    sha_prefix: str | None = None,
    corrected: Path | None = None,
    skip_row_count: bool = False,
) -> dict:
    """Re-admit a quarantined file (by its SHA-256 prefix) or a corrected file in its place.

    The file is copied into the drop folder as a complete upload and processed at once.
    Once it is accepted, the quarantined original is deleted: it now lives in the archive
    (or, when a corrected file replaced it, it is superseded), and childindex keeps no
    second copy. ``skip_row_count`` is the operator's override for a genuine change in size.
    """
    from childindex.index.ledger import Ledger

    contract = load_contract(agency)
    quarantined: Path | None = None
    if sha_prefix:
        matches = sorted((settings.quarantine_dir / agency).glob(f"{sha_prefix}*/*"))
        matches = [m for m in matches if m.name != "quarantine.json"]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} quarantined {agency} files match {sha_prefix!r}; give a longer prefix")
        quarantined = matches[0]
    source = corrected or quarantined
    if source is None:
        raise ValueError("name a quarantined file's SHA-256 prefix, or a corrected file")
    name = (quarantined or source).name  # a corrected file takes the quarantined one's name
    folder = settings.drop_folder(agency)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(source, target)
    if contract.file.completion == "marker":
        target.with_name(name + MARKER_SUFFIX).touch()
    result = process_file(settings, contract, target, night, Ledger(settings.index_url), skip_row_count=skip_row_count)
    if quarantined is not None and result.outcome in ("accepted", "accepted_with_rejections"):
        shutil.rmtree(quarantined.parent)
    return result.as_dict()


# --------------------------------------------------------------------------- one file


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def process_file(  # noqa: ANN001
    settings: Settings, contract: Contract, path: Path, night: date, ledger, *, skip_row_count: bool = False
) -> IntakeResult:
    """Receive, check and stage one file; quarantine it when it is unusable as a whole.

    Raises KeyMismatch, before reading the file, when the configured key is not the index's.
    """
    from childindex.keys.epochs import check_key

    check_key(settings.index_url, settings.key, night)  # no pseudonym under a stranger key
    started = time.perf_counter()
    agency = contract.agency
    receipt, match, file_night = new_receipt(contract, path, night)
    sha = receipt.sha256

    if ledger.already_loaded(agency, sha):
        receipt.outcome = "duplicate"
        receipt.file_problems.append({"rule": "already_loaded", "detail": "a file with this SHA-256 was loaded before"})
        result = _finish(settings, ledger, receipt, file_night or night, "duplicate", None, started)
        # Under the night's folder, so the archive rule ages it out with the night.
        dest = settings.archive_dir / agency / (file_night or night).isoformat() / "duplicates"
        _move(path, dest / f"{sha[:16]}-{path.name}")
        return result

    staged = None
    try:
        _require_contract_name(contract, match, file_night)
        history = [] if skip_row_count else ledger.recent_row_counts(agency, settings.validation.row_count_history)
        staged = _stage(settings, contract, path, file_night, sha, receipt, history)
    except FileRejected as exc:
        receipt.reject(exc.rule, exc.detail)
        result = _finish(settings, ledger, receipt, file_night or night, "quarantined", None, started)
        _quarantine(settings, agency, path, sha, exc.rule)
        return result

    receipt.accept()
    result = _finish(settings, ledger, receipt, file_night, "staged", staged, started)
    # The ledger row comes first: a crash before the move leaves the file in the drop folder,
    # and the rerun recognises it by its hash instead of staging it twice.
    _move(path, settings.archive_dir / agency / file_night.isoformat() / path.name)
    return result


def new_receipt(contract: Contract, path: Path, night: date) -> tuple[Receipt, re.Match[str] | None, date | None]:
    """A receipt for ``path`` before any check, with the name matched against the contract."""
    # Never read through a symlink: its "hash" is of its name, so the ledger still has a key.
    link = path.is_symlink()
    sha = hashlib.sha256(f"symlink:{path.name}".encode()).hexdigest() if link else sha256_file(path)
    receipt = Receipt(
        agency=contract.agency,
        contract_version=contract.version,
        file_name=safe_name(path.name),  # formula-looking names are defused
        sha256=sha,
        size_bytes=0 if link else path.stat().st_size,
        night=None,
        received_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        outcome="rejected",
    )
    # A contract's file may also arrive gzip-compressed: the same name plus ".gz".
    match = contract.match_name(path.name.removesuffix(GZIP_SUFFIX))
    file_night = _night_from(match.group("night")) if match else night
    receipt.night = file_night.isoformat() if file_night else None
    return receipt, match, file_night


def check_file(settings: Settings, contract: Contract, path: Path, today: date) -> Receipt:
    """The pre-check: the very same reading and rules as intake, offline (no key, no database,
    nothing moved or written but DuckDB's scratch space). The row-count band needs the
    agency's history, so it is not applied here."""
    receipt, match, file_night = new_receipt(contract, path, today)
    try:
        _require_contract_name(contract, match, file_night)
        validate_file(settings, contract, path, file_night, receipt, history=[])
    except FileRejected as exc:
        receipt.reject(exc.rule, exc.detail)
        return receipt
    receipt.accept()
    return receipt


def _require_contract_name(contract: Contract, match: re.Match[str] | None, file_night: date | None) -> None:
    if match is None or file_night is None:
        raise FileRejected("file_name", f"the name does not match the contract pattern {contract.file.pattern}")


def _night_from(text: str) -> date | None:
    digits = text.replace("-", "")
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def _finish(
    settings: Settings,
    ledger,
    receipt: Receipt,
    night: date,
    status: str,  # noqa: ANN001
    staged: Path | None,
    started: float,
) -> IntakeResult:
    receipt_path = receipt.write(settings.outbox(receipt.agency))
    ledger.record(
        agency=receipt.agency,
        file_name=receipt.file_name,
        sha256=receipt.sha256,
        night=night,
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
        agency=receipt.agency,
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
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), dest)
    marker = path.with_name(path.name + MARKER_SUFFIX)
    if marker.exists():
        marker.unlink()


def _quarantine(settings: Settings, agency: str, path: Path, sha: str, rule: str) -> None:
    dest = settings.quarantine_dir / agency / sha[:16] / path.name
    _move(path, dest)
    # Why it is here, for operators and for `childindex reprocess` later: hash and rule only.
    note = {"sha256": sha, "rule": rule, "agency": agency, "quarantined_at": datetime.now(UTC).isoformat()}
    (dest.parent / "quarantine.json").write_text(json.dumps(note) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- reading + staging


def _stage(
    settings: Settings, contract: Contract, path: Path, night: date, sha: str, receipt: Receipt, history: list[int]
) -> Path:
    """Validate, then write the accepted rows, pseudonymised, to one staging Parquet file.

    The file is written under a temporary name while the checks finish, and renamed only
    when every check has passed: a crash or a rejection never leaves a staging file."""
    out = staging_path(settings, contract.agency, night, sha)
    tmp = out.with_suffix(".tmp")
    try:
        validate_file(
            settings,
            contract,
            path,
            night,
            receipt,
            history,
            on_accepted=lambda con: _write_staging(con, settings, contract, night, tmp),
        )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def pseudonym_sql(key: bytes, agency: str, pads: str = "") -> tuple[dict[str, str], dict[str, object]]:
    """SELECT expressions over the standardised rows (``std``) for the four pseudonyms, and
    their bound parameters; ``pads`` names a second key's parameters (key rotation)."""
    from childindex.staging.pseudonymise import hmac_sql, key_params

    ipad, opad = f"ipad{pads}", f"opad{pads}"
    params: dict[str, object] = {
        **{name + pads: value for name, value in key_params(key).items()},
        "d_local": f"local_id:{agency}",
        "d_nhs": "nhs_number",
        "d_upn": "upn",
        "d_match": "name_dob",
    }
    given, family = normalise_name_sql(f"{STD}given_name"), normalise_name_sql(f"{STD}family_name")
    name_dob = f"{given} || '|' || {family} || '|' || CAST({STD}date_of_birth AS VARCHAR)"
    exprs = {
        "source_key": hmac_sql(f"{STD}local_id", "d_local", ipad, opad),
        "nhs_key": hmac_sql(f"{STD}nhs_number", "d_nhs", ipad, opad),
        "upn_key": hmac_sql(f"{STD}upn", "d_upn", ipad, opad),
        "match_key": hmac_sql(name_dob, "d_match", ipad, opad),
    }
    return exprs, params


def _write_staging(con, settings: Settings, contract: Contract, night: date, tmp: Path) -> None:  # noqa: ANN001
    keys, params = pseudonym_sql(settings.key, contract.agency)
    params.update(night=night, agency=contract.agency)
    select = {
        "night": "$night::DATE",
        "agency": "$agency",
        "source_row": "_row",
        **keys,
        **{f: STD + f for f in STAGING_COLUMNS[7:]},
        # A shielded involvement: the index learns that a sensitive service is involved and
        # how to reach it, never which service, nor the address on that record.
        "service": f"CASE WHEN coalesce({STD}sensitive, false) THEN '{SENSITIVE_SERVICE}' ELSE {STD}service END",
        "postcode": f"CASE WHEN coalesce({STD}sensitive, false) THEN NULL ELSE {STD}postcode END",
    }
    assert tuple(select) == STAGING_COLUMNS, "staging layout and intake disagree"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    body = ", ".join(f"{expr} AS {name}" for name, expr in select.items())
    con.execute(
        f"COPY (SELECT {body} FROM std ANTI JOIN rejected ON rejected.row = std._row ORDER BY _row) "
        f"TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)",
        params,
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
