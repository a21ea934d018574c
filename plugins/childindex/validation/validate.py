"""Validation of one extract: read into DuckDB, checked by the SQL rules and by the GX suite.

:func:`validate_file` reads the file (:mod:`childindex.validation.reader`) into a DuckDB
database in a work folder of its own, where view ``std`` holds every row: the file's
columns, trimmed, beside the standardised whitelisted fields (``std_<field>``). Every rule
of the catalogue (:mod:`childindex.validation.rules`) is a SQL predicate over ``std``; the
failing (row, rule) pairs go to table ``rejected`` in one set operation and fill the
receipt. The file policy (:mod:`childindex.validation.policy`) may then refuse the whole
file. The contract's GX suite runs last on the same table, through GX's own driver, and must
count every rule exactly as the SQL did. Only then does the caller get the rows to read.

Rules name columns, rows and rules, never values. The database holds children's data: it
lives in the work folder and is deleted when the ``with`` block ends, however it ends (and
by retention, if a crash left one behind).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from childindex.contracts.contract import Contract
from childindex.errors import FileRejected, ValidationEnginesDisagree
from childindex.receipts import HEADER_ROWS, RECEIPT_ROW_LIMIT, Receipt, RowRejection, is_link, safe_name
from childindex.settings import private_dir
from childindex.validation.file_checks import check_file_level
from childindex.validation.policy import check_rejected_share, check_row_count
from childindex.validation.reader import write_parts
from childindex.validation.rules import DUPLICATED_IDS_SQL, field_count_expects, row_rules, sql_params
from childindex.validation.sql import STD, identity_blank_sql, quote_str
from childindex.whitelist import IDENTITY_FIELDS

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from childindex.organisations.registry import Organisation
    from childindex.settings import Settings

DUCKDB_MEMORY = "1GB"  # DuckDB spills to the work folder beyond this


@dataclass(frozen=True)
class Checked:
    """A checked file's rows, to read inside :func:`validate_file`'s ``with`` block.

    ``con`` is a read-only DuckDB connection with view ``std`` (every row read, standardised,
    numbered by ``_row``) and table ``rejected`` (``row``, ``ord``: a row and a rule it
    broke). ``accepted`` is a FROM clause for the rows that broke no rule.
    """

    con: DuckDBPyConnection
    accepted: ClassVar[str] = "std ANTI JOIN rejected ON rejected.row = std._row"


@contextmanager
def validate_file(
    settings: Settings,
    organisation: Organisation,
    contract: Contract,
    path: Path,
    night: date,
    receipt: Receipt,
    history: list[int],
    *,
    work_root: Path | None = None,
) -> Iterator[Checked]:
    """Read and check one file, fill ``receipt``, and yield its checked rows.

    Raises FileRejected, before yielding, when the file is unusable as a whole (the
    receipt says why), and ValidationEnginesDisagree when GX and the SQL rules count
    differently (a bug). ``history`` is the organisation's recent row counts, for the size check
    (empty: not applied). Needs no key and no index database: ``childindex check`` runs
    exactly this, offline. The work folder (under ``work_root``, default the work directory)
    is deleted when the block ends.
    """
    if path.is_symlink():
        raise FileRejected("symlink", "the drop folder entry is a symbolic link; links are never followed")
    if is_link(path):
        raise FileRejected(
            "hard_link", "the drop folder entry is a hard link (the file has another name); links are never followed"
        )
    header = check_file_level(path, contract, settings.validation.max_inflated_bytes)
    receipt.columns_dropped = [safe_name(h) for h in header if h not in set(contract.column_names)]
    receipt.optional_columns_missing = [c.name for c in contract.columns if c.name not in header]

    root = private_dir(work_root or settings.work_dir)
    # A fresh name each time: GX's driver may still hold an earlier run's file open.
    work = WorkFolder(root / f"validate-{receipt.sha256[:16]}-{uuid.uuid4().hex[:8]}")
    try:
        work.parts.mkdir(parents=True)
        con = work.connect()
        try:
            loaded = write_parts(path, contract, header, work.parts)
            receipt.rows_read, receipt.bad_lines = loaded.rows_read, loaded.bad_lines
            con.execute(f"CREATE VIEW std AS SELECT * FROM read_parquet('{quote_str(work.parts)}/*.parquet')")
            check_row_count(settings, receipt.rows_read, history)
            rows_set_aside = _check_rows(con, contract, night, receipt)
            # The sender's own limit, from the object given: the pre-check's stand-in for an
            # organisation not yet registered has no registry entry to look up.
            own = organisation.max_rejected_share
            limit = settings.validation.max_rejected_share if own is None else own
            check_rejected_share(limit, receipt.rows_read, receipt.rows_rejected, rows_set_aside)
            receipt.rows_sensitive = con.execute(
                f"SELECT count(*) FROM {Checked.accepted} WHERE {STD}sensitive"
            ).fetchall()[0][0]
            receipt.incomplete_rows = _incomplete_rows(con, contract)
        finally:
            con.close()  # GX opens the file through its own driver: DuckDB allows that only now
        receipt.checks = _cross_check(work.db_path, contract, night, receipt)
        con = work.connect(read_only=True)
        try:
            yield Checked(con)
        finally:
            con.close()
    finally:
        work.discard()


@dataclass(frozen=True)
class WorkFolder:
    """A file's work folder: ``work.duckdb`` (view ``std`` over the standardised Parquet
    parts in ``std/``, tables ``rejected`` and ``duplicated_ids``). All of it is the file's data."""

    folder: Path

    @property
    def db_path(self) -> Path:
        return self.folder / "work.duckdb"

    @property
    def parts(self) -> Path:
        return self.folder / "std"

    def connect(self, *, read_only: bool = False) -> DuckDBPyConnection:
        import duckdb

        config: dict[str, Any] = {
            "threads": 2,
            "memory_limit": DUCKDB_MEMORY,
            "temp_directory": str(self.folder / "spill"),
        }
        return duckdb.connect(str(self.db_path), read_only=read_only, config=config)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _check_rows(con: DuckDBPyConnection, contract: Contract, night: date, receipt: Receipt) -> int:
    """Every rule in one scan of ``std``: (row, rule) pairs for the failures. A row breaking
    a rule that rejects goes to ``rejected`` with all its failures; the failures of rules
    that set a value aside (:attr:`Rule.sets_aside`) in rows kept go to ``set_aside``.
    Returns how many rows were kept with a value set aside.

    ``std._row`` and the tables count data rows from 1; the receipt numbers them as a
    spreadsheet does (:data:`~childindex.receipts.HEADER_ROWS`)."""
    con.execute(DUPLICATED_IDS_SQL)
    rules = row_rules(contract)
    flags = ", ".join(f"CASE WHEN {r.predicate} THEN {i} END" for i, r in enumerate(rules))
    aside = [i for i, r in enumerate(rules) if r.sets_aside] or [-1]
    con.execute(
        f"CREATE TEMP TABLE failed AS SELECT row, ord, list_contains({aside}, ord) AS aside FROM "
        f"(SELECT _row AS row, unnest([{flags}]) AS ord FROM std) WHERE ord IS NOT NULL",
        sql_params(night),
    )
    con.execute("""
        CREATE TABLE rejected AS SELECT row, ord FROM failed
        WHERE row IN (SELECT row FROM failed WHERE NOT aside);
        CREATE TABLE set_aside AS SELECT row, ord FROM failed ANTI JOIN rejected USING (row);
    """)
    by_rule = con.execute("SELECT ord, count(*) FROM failed GROUP BY ord").fetchall()
    receipt.rule_counts = {f"{rules[o].column}:{rules[o].rule}": n for o, n in sorted(by_rule)}
    receipt.rule_summary = [
        {"rule": rules[o].rule, "column": rules[o].column, "rows": n, "expected": rules[o].expects}
        for o, n in sorted(by_rule)
    ]
    if receipt.bad_lines:
        expected = field_count_expects(contract)
        summary = {"rule": "field_count", "column": "*", "rows": len(receipt.bad_lines), "expected": expected}
        receipt.rule_summary.insert(0, summary)
    listed = con.execute(f"SELECT row, ord FROM rejected ORDER BY row, ord LIMIT {RECEIPT_ROW_LIMIT}").fetchall()
    rejections = [RowRejection(row=n + HEADER_ROWS, column="*", rule="field_count") for n in receipt.bad_lines]
    rejections += [RowRejection(row=r + HEADER_ROWS, column=rules[o].column, rule=rules[o].rule) for r, o in listed]
    rejections.sort(key=lambda r: r.row)
    receipt.rejected_rows = rejections[:RECEIPT_ROW_LIMIT]
    receipt.rejected_rows_total = len(receipt.bad_lines) + con.execute("SELECT count(*) FROM rejected").fetchall()[0][0]
    rows_with_rules = con.execute("SELECT count(DISTINCT row) FROM rejected").fetchall()[0][0]
    receipt.rows_rejected = rows_with_rules + len(receipt.bad_lines)
    receipt.rows_accepted = receipt.rows_read - receipt.rows_rejected
    listed = con.execute(f"SELECT row, ord FROM set_aside ORDER BY row, ord LIMIT {RECEIPT_ROW_LIMIT}").fetchall()
    receipt.values_set_aside = [
        RowRejection(row=r + HEADER_ROWS, column=rules[o].column, rule=rules[o].rule) for r, o in listed
    ]
    aside_by_rule = con.execute("SELECT ord, count(*) FROM set_aside GROUP BY ord").fetchall()
    receipt.set_aside_counts = {f"{rules[o].column}:{rules[o].rule}": n for o, n in sorted(aside_by_rule)}
    receipt.values_set_aside_total = sum(n for _, n in aside_by_rule)
    return con.execute("SELECT count(DISTINCT row) FROM set_aside").fetchall()[0][0]


def _incomplete_rows(con: DuckDBPyConnection, contract: Contract) -> dict[str, int]:
    """Accepted rows with a blank identity field (blank as sent, or its value set aside), by
    column (the contract's missing_identity option let them through): counts only, in the
    contract's column order."""
    fields = tuple(c.field for c in contract.columns if c.field in IDENTITY_FIELDS)
    columns = [c.name for c in contract.columns if c.field in IDENTITY_FIELDS]
    counts = ", ".join(f"count(*) FILTER (WHERE {blank})" for blank in identity_blank_sql(contract, fields))
    [row] = con.execute(f"SELECT {counts} FROM {Checked.accepted}").fetchall()
    return {c: n for c, n in zip(columns, row, strict=True) if n}


def _cross_check(db_path: Path, contract: Contract, night: date, receipt: Receipt) -> list[dict[str, Any]]:
    """The GX suite on table ``std``; every expectation must count what the SQL rule counted."""
    from childindex.validation.gx.runner import run_suite_on_duckdb

    checks = run_suite_on_duckdb(db_path, contract, night)
    for check in checks:
        sql_count = receipt.rule_counts.get(f"{check.column}:{check.rule}", 0)
        if sql_count != check.unexpected_count:
            raise ValidationEnginesDisagree(
                f"{check.rule} on {check.column}: GX counted {check.unexpected_count}, the SQL rules {sql_count}"
            )
    return [c.as_dict() for c in checks]
