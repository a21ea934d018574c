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

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from childindex.contracts import Contract, load_contract
from childindex.receipts import Receipt, RowRejection
from childindex.settings import Settings
from childindex.staging import STAGING_COLUMNS, staging_path
from childindex.validation import MAX_AGE_YEARS

log = logging.getLogger(__name__)

MARKER_SUFFIX = ".done"
PARTIAL_SUFFIX = ".part"
GZIP_SUFFIX = ".gz"


def _open_binary(path: Path):  # noqa: ANN202
    """The file's bytes, decompressed when it is a .gz file."""
    if path.name.endswith(GZIP_SUFFIX):
        import gzip

        return gzip.open(path, "rb")
    return path.open("rb")


class FileRejected(Exception):
    """The whole file is unusable; ``rule`` and ``detail`` go into the receipt."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


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
    if corrected is not None and quarantined is not None:
        name = quarantined.name
    else:
        name = source.name
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
    """Receive, check and stage one file; quarantine it when it is unusable as a whole."""
    agency = contract.agency
    receipt, match, file_night = _new_receipt(contract, path, night)
    sha = receipt.sha256

    if ledger.already_loaded(agency, sha):
        receipt.outcome = "duplicate"
        receipt.file_problems.append({"rule": "already_loaded", "detail": "a file with this SHA-256 was loaded before"})
        result = _finish(settings, ledger, receipt, file_night or night, "duplicate", None)
        _move(path, settings.archive_dir / agency / "duplicates" / f"{sha[:16]}-{path.name}")
        return result

    staged = None
    try:
        if match is None or file_night is None:
            raise FileRejected("file_name", f"the name does not match the contract pattern {contract.file.pattern}")
        history = [] if skip_row_count else ledger.recent_row_counts(agency, settings.validation.row_count_history)
        staged = _stage(settings, contract, path, file_night, sha, receipt, history)
    except FileRejected as exc:
        receipt.outcome = "rejected"
        receipt.file_problems.append({"rule": exc.rule, "detail": exc.detail})
        receipt.rows_accepted = 0
        receipt.rows_rejected = receipt.rows_read
        result = _finish(settings, ledger, receipt, file_night or night, "quarantined", None)
        _quarantine(settings, agency, path, sha, exc.rule)
        return result

    receipt.outcome = "accepted_with_rejections" if receipt.rows_rejected else "accepted"
    result = _finish(settings, ledger, receipt, file_night, "staged", staged)
    # The ledger row comes first: a crash before the move leaves the file in the drop folder,
    # and the rerun recognises it by its hash instead of staging it twice.
    _move(path, settings.archive_dir / agency / file_night.isoformat() / path.name)
    return result


def _new_receipt(contract: Contract, path: Path, night: date) -> tuple[Receipt, re.Match[str] | None, date | None]:
    """A receipt for ``path`` before any check, with the name matched against the contract."""
    # Never read through a symlink: its "hash" is of its name, so the ledger still has a key.
    link = path.is_symlink()
    sha = hashlib.sha256(f"symlink:{path.name}".encode()).hexdigest() if link else sha256_file(path)
    receipt = Receipt(
        agency=contract.agency,
        contract_version=contract.version,
        file_name=path.name,
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
    receipt, match, file_night = _new_receipt(contract, path, today)
    try:
        if match is None or file_night is None:
            raise FileRejected("file_name", f"the name does not match the contract pattern {contract.file.pattern}")
        validate_file(settings, contract, path, file_night, receipt, history=[]).close()
    except FileRejected as exc:
        receipt.outcome = "rejected"
        receipt.file_problems.append({"rule": exc.rule, "detail": exc.detail})
        receipt.rows_accepted, receipt.rows_rejected = 0, receipt.rows_read
        return receipt
    receipt.outcome = "accepted_with_rejections" if receipt.rows_rejected else "accepted"
    return receipt


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


def read_header(path: Path, contract: Contract) -> list[str]:
    """The header row, decoded with the contract's encoding (file-level errors raised)."""
    if path.stat().st_size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    try:
        with _open_binary(path) as fh:
            first = fh.readline(1 << 20)
    except (OSError, EOFError):  # gzip.BadGzipFile is an OSError
        raise FileRejected("unreadable", "the compressed file is corrupt") from None
    if not first.strip():
        raise FileRejected("empty_file", "the file has no header row")
    encoding = contract.file.encoding
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError:
        raise FileRejected("encoding", f"the header is not valid {encoding}") from None
    text = text.lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(text), delimiter=contract.file.delimiter), [])
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRejected("duplicate_header", "columns named more than once: " + ", ".join(_safe(d) for d in dupes))
    return header


def _safe(name: str) -> str:
    """A column name as receipts show it: formula-looking names are defused."""
    name = name[:100]
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def _read_table(path: Path, contract: Contract, header: list[str], bad_lines: list[int]):  # noqa: ANN202
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row) -> str:  # noqa: ANN001 - row.text holds data: never keep it
        bad_lines.append(row.number if row.number is not None else -1)
        return "skip"

    read = pacsv.ReadOptions(
        column_names=header, skip_rows=1, encoding=contract.file.encoding, use_threads=False, block_size=1 << 24
    )
    parse = pacsv.ParseOptions(
        delimiter=contract.file.delimiter, newlines_in_values=False, invalid_row_handler=on_invalid
    )
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header}, strings_can_be_null=True, quoted_strings_can_be_null=True
    )
    source = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip") if path.name.endswith(GZIP_SUFFIX) else str(path)
    try:
        return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
    except UnicodeDecodeError:
        raise FileRejected("encoding", f"the file is not valid {contract.file.encoding}") from None
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError, EOFError):
        # The parser's message can quote a row: never pass it on.
        raise FileRejected("unreadable", "the file could not be parsed as delimited text") from None


def _check_row_count(settings: Settings, agency: str, rows: int, history: list[int]) -> None:
    """A sudden change in size (a halving, a tripling) suggests a broken export, not a real night."""
    policy = settings.validation
    if len(history) < policy.row_count_min_history:
        return
    median = statistics.median(history)
    low, high = median / policy.row_count_factor, median * policy.row_count_factor
    if not low <= rows <= high:
        raise FileRejected(
            "row_count_anomaly",
            f"{rows} rows, outside {low:.0f} to {high:.0f} (the median of the last {len(history)} "
            f"accepted files, divided and multiplied by {policy.row_count_factor:g})",
        )


def validate_file(
    settings: Settings, contract: Contract, path: Path, night: date, receipt: Receipt, history: list[int]
):  # noqa: ANN201 - returns a DuckDB connection
    """Read and check one file; fill ``receipt``; return a DuckDB connection holding ``std``
    (standardised rows) and ``rejected`` (row, column, rule). Raises FileRejected.

    Needs no key and no database: ``childindex check`` runs exactly this, offline.
    """
    import duckdb
    import numpy as np
    import pyarrow as pa

    from childindex.validation import row_rules, standardise_sql

    if path.is_symlink():
        raise FileRejected("symlink", "the drop folder entry is a symbolic link; links are never followed")
    header = read_header(path, contract)
    known = set(contract.column_names)
    missing_required = [c.name for c in contract.columns if c.required and c.name not in header]
    if missing_required:
        raise FileRejected("missing_columns", "required columns missing: " + ", ".join(missing_required))
    receipt.columns_dropped = [_safe(h) for h in header if h not in known]
    receipt.optional_columns_missing = [c.name for c in contract.columns if c.name not in header]

    bad_lines: list[int] = []
    table = _read_table(path, contract, header, bad_lines)
    receipt.rows_read = table.num_rows + len(bad_lines)
    _check_row_count(settings, contract.agency, receipt.rows_read, history)
    # Drop non-contract columns before anything else touches them.
    table = table.select([h for h in header if h in known])
    for col in contract.columns:  # absent optional columns become NULL
        if col.name not in table.column_names:
            table = table.append_column(col.name, pa.nulls(table.num_rows, pa.string()))
    # Data row numbers (header not counted): every row the parser kept, in order, is one of
    # 1..total that the parser did not reject.
    bad = np.array(sorted({n - 1 for n in bad_lines if n > 0}), dtype=np.int64)
    total = table.num_rows + len(bad_lines)
    good_idx = np.setdiff1d(np.arange(1, total + 1, dtype=np.int64), bad)[: table.num_rows]
    table = table.append_column("_row", pa.array(good_idx))
    receipt.rows_read = table.num_rows + len(bad_lines)
    rejections = [RowRejection(row=int(n), column="*", rule="field_count") for n in bad]

    settings.work_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "temp_directory": str(settings.work_dir)})
    try:
        con.register("raw_in", table)
        cleaned = ", ".join(f'NULLIF(trim("{c}"), \'\') AS "{c}"' for c in contract.column_names)
        con.execute(f"CREATE TEMP VIEW raw AS SELECT _row, {cleaned} FROM raw_in")
        con.register(
            "sex_codes", pa.table({"code": list(contract.sex_codes), "sex": list(contract.sex_codes.values())})
        )
        con.register("services", pa.table({"service": list(contract.services)}))
        params = {"date_format": contract.date_format}
        con.execute(f"CREATE TEMP TABLE std AS {standardise_sql(contract)}", params)
        rules = row_rules(contract)
        checks = " UNION ALL ".join(
            f"SELECT s._row AS row, '{r.column}' AS col, '{r.rule}' AS rule, {i} AS ord "
            f"FROM raw r JOIN std s USING (_row) WHERE {r.predicate}"
            for i, r in enumerate(rules)
        )
        con.execute(f"CREATE TEMP TABLE rejected AS SELECT * FROM ({checks})", {"night": night})
        found = con.execute("SELECT row, col, rule FROM rejected ORDER BY row, ord").fetchall()
        rejections += [RowRejection(row=r, column=c, rule=u) for r, c, u in found]
        rejections.sort(key=lambda r: r.row)
        receipt.rejected_rows = rejections
        receipt.checks = _run_expectations(con, contract, night)
        rejected_rows = con.execute("SELECT count(DISTINCT row) FROM rejected").fetchall()[0][0]
        receipt.rows_rejected = rejected_rows + len(bad_lines)
        receipt.rows_accepted = receipt.rows_read - receipt.rows_rejected
        if receipt.rows_read and receipt.rows_accepted == 0:
            raise FileRejected("all_rows_rejected", "every row broke at least one rule")
        share, limit = receipt.rows_rejected / max(receipt.rows_read, 1), settings.validation.max_share(contract.agency)
        if share > limit:
            raise FileRejected(
                "rejected_share_over_threshold",
                f"{share:.1%} of rows were rejected; the limit for {contract.agency} is {limit:.1%}",
            )
    except BaseException:
        con.close()
        raise
    return con


def _run_expectations(con, contract: Contract, night: date) -> list[dict]:  # noqa: ANN001
    """Run the agency's GX suite on the file's rows and check it agrees with the SQL rules."""
    import pandas as pd

    from childindex.expectations import STD, ValidationEnginesDisagree, run_suite

    raw_cols = ", ".join(f'r."{c}"' for c in contract.column_names)
    fields = ("local_id", "nhs_number", "upn", "postcode", "date_of_birth", "involvement_start", "involvement_end")
    std_cols = ", ".join(f"{'s.' + f if contract.column_for(f) else 'NULL'} AS {STD}{f}" for f in fields)
    frame = con.sql(f"SELECT {raw_cols}, {std_cols} FROM raw r JOIN std s USING (_row)").df()
    for f in ("date_of_birth", "involvement_start", "involvement_end"):
        frame[STD + f] = pd.to_datetime(frame[STD + f])
    ts = pd.Timestamp(night)
    params = {"night": ts, "min_date_of_birth": ts - pd.DateOffset(years=MAX_AGE_YEARS)}
    checks = run_suite(contract.agency, frame, params)
    counted = dict(
        ((c, u), n) for c, u, n in con.execute("SELECT col, rule, count(*) FROM rejected GROUP BY ALL").fetchall()
    )
    for check in checks:
        if counted.get((check.column, check.rule), 0) != check.unexpected_count:
            raise ValidationEnginesDisagree(
                f"{check.rule} on {check.column}: GX counted {check.unexpected_count}, "
                f"the SQL rules {counted.get((check.column, check.rule), 0)}"
            )
    return [c.as_dict() for c in checks]


def _stage(
    settings: Settings, contract: Contract, path: Path, night: date, sha: str, receipt: Receipt, history: list[int]
) -> Path:
    from childindex.pseudonymise import hmac_sql, key_params
    from childindex.validation import normalise_name_sql

    con = validate_file(settings, contract, path, night, receipt, history)
    try:
        key = {
            **key_params(settings.key),
            "d_local": f"local_id:{contract.agency}",
            "d_nhs": "nhs_number",
            "d_upn": "upn",
            "d_match": "name_dob",
            "night": night,
            "agency": contract.agency,
        }
        nhs = "s.nhs_number" if contract.column_for("nhs_number") else "NULL"
        upn = "s.upn" if contract.column_for("upn") else "NULL"
        given, family = normalise_name_sql("s.given_name"), normalise_name_sql("s.family_name")
        select = {
            "night": "$night::DATE",
            "agency": "$agency",
            "source_row": "s._row",
            "source_key": hmac_sql("s.local_id", "d_local"),
            "nhs_key": hmac_sql(nhs, "d_nhs"),
            "upn_key": hmac_sql(upn, "d_upn"),
            "match_key": hmac_sql(f"{given} || '|' || {family} || '|' || CAST(s.date_of_birth AS VARCHAR)", "d_match"),
            "given_name": "s.given_name",
            "family_name": "s.family_name",
            "date_of_birth": "s.date_of_birth",
            "sex": "s.sex",
            "postcode": "s.postcode",
            "service": "s.service",
            "contact_route": "s.contact_route",
            "involvement_start": "s.involvement_start",
            "involvement_end": "s.involvement_end",
        }
        assert tuple(select) == STAGING_COLUMNS, "staging layout and intake disagree"
        out = staging_path(settings, contract.agency, night, sha)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        body = ", ".join(f"{expr} AS {name}" for name, expr in select.items())
        con.execute(
            f"COPY (SELECT {body} FROM std s WHERE s._row NOT IN (SELECT row FROM rejected) "
            f"ORDER BY s._row) TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)",
            key,
        )
        os.replace(tmp, out)  # atomic: a crash never leaves a half-written staging file
        return out
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
