"""Receipts: what happened to each file an organisation sent, as JSON and as plain text.

A receipt names files, columns, row numbers and rules, never a value from the file. Rows are
numbered as a spreadsheet numbers them: the header is row 1, the first data row is row 2
(:data:`HEADER_ROWS`). Schema: docs/receipts.md.

Receiving a file starts its receipt (:func:`new_receipt`): the file is hashed and its name
matched against the contract. Intake, the pre-check and key rotation all start there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childindex.contracts.contract import GZIP_SUFFIX, Contract
from childindex.contracts.describe import file_name_in_words
from childindex.errors import FileRejected
from childindex.safe_paths import write_inside

if TYPE_CHECKING:
    from childindex.organisations.registry import Organisation

# 2: organisation (code and name) and contract name instead of agency; fields added within it:
# incomplete_rows, values_set_aside, values_set_aside_total, set_aside_counts.
# 3: rows numbered as a spreadsheet does (version 2 counted data rows from 1), rule_summary,
# several file problems at once.
RECEIPT_VERSION = 3
# Rows before the first data row: a receipt's row N is the spreadsheet's row N (header row 1).
HEADER_ROWS = 1

# What the organisation should do, by rule. Keys are the rule names used in rejections.
ADVICE = {
    "required": "Fill the required column, or leave the record out until it is known.",
    "too_little_identity": "Fill in the blank given name, family name or date of birth, or send the child's NHS "
    "number or UPN: without them the row says too little about who the child is to be matched (the contract "
    "says which blanks it allows).",
    "date_format": "Write dates in the contract's date format (four-digit years).",
    "max_length": "The value is longer than childindex holds for this field: check the export.",
    "date_of_birth_range": "Check the date of birth: it is in the future or outside ages 0 to 25.",
    "date_order": "The start date is after the end date: check both.",
    "code_set": "Use one of the codes listed in the contract.",
    "nhs_number_check": "The NHS number fails its modulus 11 check: re-trace it or leave it blank.",
    "upn_check": "The UPN's check letter does not match: correct it or leave it blank.",
    "postcode_format": "Send a full UK postcode.",
    "duplicate_local_id": "Each record id may appear once per file: send one row per record.",
    "field_count": "The row has the wrong number of fields: check delimiters and quotes.",
    "empty_file": "The file is empty: send it again with its header and rows.",
    "encoding": "Save the file in the contract's encoding (the file problem above says which, and what the file is "
    "now).",
    "delimiter": "Separate the columns with the contract's delimiter (the file problem above says which).",
    "unreadable": "The file could not be parsed as delimited text: check delimiter and quotes.",
    "missing_columns": "Add the missing required columns, named exactly as in the contract (the file problem above "
    "suggests which of the file's columns may be one renamed).",
    "duplicate_header": "Each column name may appear once in the header.",
    "file_name": "Name the file as the file problem above says, for the night the extract was taken.",
    "all_rows_rejected": "No row could be accepted: fix the rules listed and send the file again.",
    "rejected_share_over_threshold": "Too many rows were rejected for the file to be trusted: fix the rules "
    "listed and send the whole file again.",
    "row_count_anomaly": "The file's size is far from recent nights': check the export is complete, then send it "
    "again (or ask the childindex team to re-admit it with 'childindex reprocess').",
    "already_loaded": "Nothing to do: this exact file was loaded before.",
    "night_ahead": "The night in the file's name is later than the day it arrived: name the file for the night "
    "its extract was taken, and send it again.",
    "changed_during_intake": "The file changed while childindex read it: write the completion marker (or rename "
    "the upload) only once the file is whole, then send it again.",
    "unreadable_file": "childindex could not read the file (check its permissions in the drop folder), then send "
    "it again.",
    "vanished": "The file was removed from the drop folder before childindex could read it: nothing was loaded. "
    "Send it again if it should be.",
    "symlink": "Put the file itself in the drop folder, not a link to it.",
    "hard_link": "Put the file itself in the drop folder, not a second name (a hard link) for a file kept elsewhere.",
    "not_a_file": "Put only files in the drop folder: this entry is not a file and was not read.",
}

RECEIPT_ROW_LIMIT = 10_000  # rejected rows (and values set aside) listed in a receipt; all are counted

# The next step for accepted rows with a blank identity field (not a rule: the rows were kept).
INCOMPLETE_ADVICE = (
    "Some rows were accepted with a blank identity field (counted above, by column): fill them in your system "
    "when they are known. Each blank makes the child harder to match with other services' records."
)
# The next step for values set aside (a malformed identity value in a row that was kept).
SET_ASIDE_ADVICE = (
    "Some rows were accepted without a value that broke its rule (listed above as set aside): the child was "
    "staged as if the field were blank. Correct the value in your system; the next extract brings it in."
)


def new_receipt(
    organisation: Organisation,
    contract: Contract,
    path: Path,
    night: date,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> tuple[Receipt, date | None]:
    """A receipt for ``path`` before any check, and the night its name gives: None when the
    name does not fit the contract (:func:`require_contract_name` then rejects it).

    The receipt's night is the name's, or ``night`` when the name does not match at all.
    ``sha256`` and ``size``: intake's, of the bytes it read (:mod:`childindex.intake.receive`);
    otherwise the file is hashed here.
    """
    # Never read through a link (a symlink, or a hard link: another name for a file that may
    # be anywhere on the file system): its "hash" is of its name, so the ledger still has a key.
    if sha256 is None:
        link = is_link(path)
        sha256 = hashlib.sha256(f"symlink:{path.name}".encode()).hexdigest() if link else sha256_file(path)
        size = 0 if link else path.stat().st_size
    sha = sha256
    receipt = Receipt(
        organisation=organisation.code,
        organisation_name=organisation.name,
        contract=contract.name,
        contract_version=contract.version,
        file_name=safe_name(path.name),  # formula-looking names are defused
        sha256=sha,
        size_bytes=size or 0,
        night=None,
        received_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        outcome="rejected",
    )
    # A contract's file may also arrive gzip-compressed: the same name plus ".gz".
    match = contract.match_name(path.name.removesuffix(GZIP_SUFFIX))
    file_night = _night_from(match.group("night")) if match else night
    receipt.night = file_night.isoformat() if file_night else None
    return receipt, file_night if match else None


def is_link(path: Path) -> bool:
    """A symbolic link, or a regular file with more than one name (a hard link)."""
    if path.is_symlink():
        return True
    try:
        return path.stat().st_nlink > 1
    except OSError:
        return False


def require_contract_name(contract: Contract, file_night: date | None, name: str | None = None) -> date:
    """The file's night; FileRejected when its name (``name``, when given, says more) does
    not fit the contract, explained with an example of a name that does."""
    if file_night is not None:
        return file_night
    bare = (name or "").removesuffix(GZIP_SUFFIX)
    match = contract.match_name(bare) if name else None
    if match is not None:
        why = "its night is not a real date"
    elif name and re.fullmatch(contract.file.pattern, bare, flags=re.ASCII | re.IGNORECASE):
        why = "it differs in upper and lower case"
    else:
        why = "it does not fit the contract"
    raise FileRejected("file_name", f"{why}: expected {file_name_in_words(contract)}")


def sha256_file(path: Path) -> str:
    """The file's SHA-256: how the ledger recognises a repeat delivery."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """A name from a file as receipts show it: formula-looking names are defused."""
    name = name[:100]
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def _night_from(text: str) -> date | None:
    digits = text.replace("-", "")
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass
class RowRejection:
    row: int
    column: str
    rule: str


@dataclass
class Receipt:
    organisation: str  # the sender's code in the registry
    organisation_name: str
    contract: str  # the extract type it was read as
    contract_version: int
    file_name: str
    sha256: str
    size_bytes: int
    night: str | None
    received_at: str
    outcome: str  # accepted | accepted_with_rejections | rejected | duplicate
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_sensitive: int = 0  # accepted rows flagged sensitive: service type and address not kept
    file_problems: list[dict[str, str]] = field(default_factory=list)
    rejected_rows: list[RowRejection] = field(default_factory=list)
    columns_dropped: list[str] = field(default_factory=list)
    optional_columns_missing: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)  # GX expectations: rule, column, success, counts
    rejected_rows_total: int = 0  # (row, column, rule) triples; rejected_rows lists the first 10,000
    rule_counts: dict[str, int] = field(default_factory=dict)  # "column:rule" -> rows
    # Accepted rows with a blank identity field, by column (the contract's missing_identity let them in).
    incomplete_rows: dict[str, int] = field(default_factory=dict)
    # Malformed identity values in accepted rows, staged as blank (the contract's missing_identity).
    values_set_aside: list[RowRejection] = field(default_factory=list)  # the first 10,000
    values_set_aside_total: int = 0
    set_aside_counts: dict[str, int] = field(default_factory=dict)  # "column:rule" -> rows, all of them
    # Every (rule, column) broken, in the contract's rule order: rows (all of them) and what the
    # contract expects, in words. Receipts and `childindex check` show it before the rows.
    rule_summary: list[dict[str, Any]] = field(default_factory=list)
    receipt_version: int = RECEIPT_VERSION
    bad_lines: list[int] = field(default_factory=list, repr=False)  # working state, not written

    def reject(self, rule: str, detail: str) -> None:
        """The whole file is rejected: every row it read counts as rejected."""
        self.outcome = "rejected"
        self.file_problems.append({"rule": rule, "detail": detail})
        self.rows_accepted, self.rows_rejected = 0, self.rows_read
        self.incomplete_rows = {}  # no row was accepted
        # Nothing was kept, so nothing was set aside: those rows are rejected like the rest,
        # and listed with the rules they broke, so the organisation still sees what to fix.
        merged = sorted(self.rejected_rows + self.values_set_aside, key=lambda r: r.row)
        self.rejected_rows = merged[:RECEIPT_ROW_LIMIT]
        self.rejected_rows_total += self.values_set_aside_total
        self.values_set_aside, self.values_set_aside_total, self.set_aside_counts = [], 0, {}

    def reject_for(self, problem: FileRejected) -> None:
        """The whole file is rejected, for every problem ``problem`` carries."""
        for rule, detail in problem.problems:
            self.reject(rule, detail)

    def accept(self) -> None:
        self.outcome = "accepted_with_rejections" if self.rows_rejected else "accepted"

    def rules(self) -> list[str]:
        seen = [p["rule"] for p in self.file_problems] + [r.rule for r in self.rejected_rows]
        seen += [r.rule for r in self.values_set_aside]
        return list(dict.fromkeys(seen))

    def next_steps(self) -> list[str]:
        steps = [ADVICE[r] for r in self.rules() if r in ADVICE]
        if self.values_set_aside:
            steps.append(SET_ASIDE_ADVICE)
        if self.incomplete_rows:
            steps.append(INCOMPLETE_ADVICE)
        if self.columns_dropped:
            steps.append("Stop sending the columns listed as dropped: childindex may not hold them.")
        return steps or ["Nothing to do."]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("bad_lines")
        data["next_steps"] = self.next_steps()
        return data

    def _rows_line(self) -> str:
        """The counts, in the words the quality report uses: a refused file's rows are not
        loaded (none was judged on its own), rows refused by a row rule are rejected."""
        if self.outcome == "rejected":
            return f"Rows read {self.rows_read}, none loaded: the whole file was refused (the file problems below)."
        return f"Rows read {self.rows_read}, accepted {self.rows_accepted}, rejected {self.rows_rejected}."

    def to_text(self) -> str:
        lines = [
            f"childindex receipt for {self.file_name} from {self.organisation_name} ({self.organisation})",
            f"Contract: {self.contract} v{self.contract_version}",
            f"SHA-256: {self.sha256}",
            f"Outcome: {self.outcome.replace('_', ' ')}",
            self._rows_line(),
        ]
        for problem in self.file_problems:
            lines.append(f"File problem: {problem['rule']}: {problem['detail']}")
        lines.extend(self._summary_lines())
        if self.rows_sensitive:
            lines.append(
                f"Rows flagged sensitive: {self.rows_sensitive}. For these the index keeps only that a sensitive "
                "service is involved and how to reach it: not the service, not the postcode."
            )
        if self.incomplete_rows:
            counts = ", ".join(f"{column} {n}" for column, n in self.incomplete_rows.items())
            lines.append(f"Rows accepted with a blank identity field: {counts}.")
        if self.columns_dropped:
            lines.append("Columns dropped (not in the contract): " + ", ".join(self.columns_dropped))
        if self.optional_columns_missing:
            lines.append("Optional columns missing: " + ", ".join(self.optional_columns_missing))
        if self.rejected_rows:
            lines.append("Rejected rows (numbered as in a spreadsheet: the header is row 1):")
            lines.extend(f"  row {r.row}: column {r.column}: {r.rule}" for r in self.rejected_rows)
        if self.values_set_aside:
            lines.append("Values set aside (the row was accepted without them):")
            lines.extend(f"  row {r.row}: column {r.column}: {r.rule}" for r in self.values_set_aside)
        lines.append("What to do next:")
        lines.extend(f"  - {step}" for step in self.next_steps())
        return "\n".join(lines) + "\n"

    def _summary_lines(self) -> list[str]:
        """The rules broken, one line each, aligned: rule, column, rows, what was expected."""
        if not self.rule_summary:
            return []
        rows = [
            (s["rule"], s["column"], f"{s['rows']} row{'s' * (s['rows'] != 1)}", s["expected"])
            for s in self.rule_summary
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        out = ["Rules broken (rule, column, rows affected: what the contract expects):"]
        out += [
            f"  {rule:<{widths[0]}}  {column:<{widths[1]}}  {n:>{widths[2]}}: {expected}"
            for rule, column, n, expected in rows
        ]
        return out

    def write(self, outbox: Path) -> Path:
        """Write ``<file>.<hash8>.receipt.json`` and ``.txt``; returns the JSON path.

        A later delivery of the same bytes (a duplicate) gets ``.2.receipt``, ``.3.receipt``
        and so on: the first receipt, which the ledger points to, is never overwritten.

        Raises:
            UnsafePath: the outbox, or a receipt's name in it, is a link (nothing is written
                through one; the folder holding the outbox may be one).
        """
        base = f"{self.file_name}.{self.sha256[:8]}"
        stem, n = f"{base}.receipt", 1
        # A link under a receipt's name is not skipped: write_inside refuses it.
        while (outbox / f"{stem}.json").exists() and not (outbox / f"{stem}.json").is_symlink():
            n += 1
            stem = f"{base}.{n}.receipt"
        json_path = outbox / f"{stem}.json"
        write_inside(outbox.parent, json_path, json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        write_inside(outbox.parent, outbox / f"{stem}.txt", self.to_text())
        return json_path
