"""Validation of one extract: streamed into DuckDB, checked by SQL rules and by the GX suite.

The file is read in blocks (pyarrow, in the contract's encoding; a block at a time, never
the whole file) into a DuckDB database in the work folder. One table, ``std``, then holds
every row: the agency's columns, trimmed, beside the standardised whitelisted fields
(``std_<field>``). Each row rule is a SQL predicate over ``std``; the failing
(row, column, rule) triples go to ``rejected`` in one set operation. The agency's Great
Expectations suite (:mod:`childindex.expectations`) then runs on the same table through
GX's SQL engine, and must count every rule exactly as the SQL did.

Rules name columns, rows and rules, never values. The database file holds children's
data: it lives in the work folder and is deleted as soon as the file has been staged (and
by retention, if a crash left one behind).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childindex.contracts import Contract

if TYPE_CHECKING:
    from childindex.receipts import Receipt
    from childindex.settings import Settings

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
MAX_AGE_YEARS = 25
STD = "std_"  # standardised fields' prefix (agencies' own names never start with it)
GZIP_SUFFIX = ".gz"
BLOCK_BYTES = 16 << 20  # pyarrow reads this much text at a time
DUCKDB_MEMORY = "1GB"  # DuckDB spills to the work folder beyond this
RECEIPT_ROW_LIMIT = 10_000  # rejected rows listed in a receipt; all are counted


class FileRejected(Exception):
    """The whole file is unusable; ``rule`` and ``detail`` go into the receipt (never a value)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


# --------------------------------------------------------------------------- SQL pieces


def nhs_valid_sql(col: str) -> str:
    """True when ``col`` is 10 digits with a correct modulus 11 check digit."""
    weighted = " + ".join(f"{11 - i}*TRY_CAST(substr({col},{i},1) AS INTEGER)" for i in range(1, 10))
    check = f"(11 - (({weighted}) % 11)) % 11"
    # DuckDB does not short-circuit AND: TRY_CAST keeps non-digits from raising, and
    # coalesce turns the resulting NULL into "invalid".
    return (
        f"coalesce(regexp_full_match({col}, '[0-9]{{10}}') AND "
        f"{check} <> 10 AND {check} = TRY_CAST(substr({col},10,1) AS INTEGER), false)"
    )


def upn_valid_sql(col: str) -> str:
    """True when ``col`` is a 13-character UPN whose first letter is the DfE check letter."""
    weighted = " + ".join(f"{i}*TRY_CAST(substr({col},{i},1) AS INTEGER)" for i in range(2, 14))
    return (
        f"coalesce(regexp_full_match({col}, '[A-Z][0-9]{{12}}') AND "
        f"substr('{UPN_LETTERS}', (({weighted}) % 23) + 1, 1) = substr({col},1,1), false)"
    )


def postcode_valid_sql(col: str) -> str:
    return f"coalesce(regexp_full_match({col}, '{POSTCODE_RE[1:-1]}'), false)"


def date_valid_sql(col: str, date_format: str) -> str:
    fmt = date_format.replace("'", "''")
    return f"(try_strptime({col}, '{fmt}') IS NOT NULL)"


def normalise_name_sql(col: str) -> str:
    """Upper case letters only, accents stripped: the form exact matching compares."""
    return f"regexp_replace(upper(strip_accents({col})), '[^A-Z]', '', 'g')"


def postcode_sql(col: str) -> str:
    """Upper case, inner space restored before the last three characters."""
    squashed = f"upper(regexp_replace({col}, '\\s', '', 'g'))"
    return (
        f"CASE WHEN length({squashed}) BETWEEN 5 AND 7 THEN "
        f"substr({squashed}, 1, length({squashed}) - 3) || ' ' || substr({squashed}, -3) "
        f"ELSE {squashed} END"
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Rule:
    column: str  # the agency's column name, as shown in receipts
    rule: str
    predicate: str  # SQL over table std, true when the row FAILS


def row_rules(contract: Contract) -> list[Rule]:
    """Every row-level rule for a contract, in the order receipts list them."""
    rules: list[Rule] = []
    for col in contract.columns:
        raw, std = _q(col.name), STD + col.field
        if col.required:
            rules.append(Rule(col.name, "required", f"{raw} IS NULL"))
        if col.type == "date":
            rules.append(Rule(col.name, "date_format", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.field == "date_of_birth":
            rules.append(
                Rule(
                    col.name, "date_of_birth_range", f"{std} > $night OR {std} < $night - INTERVAL {MAX_AGE_YEARS} YEAR"
                )
            )
        if col.field in ("sex", "service"):
            rules.append(Rule(col.name, "code_set", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.format == "nhs_number":
            rules.append(Rule(col.name, "nhs_number_check", f"{raw} IS NOT NULL AND NOT {nhs_valid_sql(std)}"))
        if col.format == "upn":
            rules.append(Rule(col.name, "upn_check", f"{raw} IS NOT NULL AND NOT {upn_valid_sql(std)}"))
        if col.format == "postcode":
            rules.append(Rule(col.name, "postcode_format", f"{raw} IS NOT NULL AND NOT {postcode_valid_sql(std)}"))
        if col.field == "local_id":
            # Every row sharing an id is rejected: which of them is right cannot be known.
            rules.append(Rule(col.name, "duplicate_local_id", f"{STD}dup_count > 1"))
    start, end = contract.column_for("involvement_start"), contract.column_for("involvement_end")
    if start and end:
        rules.append(Rule(start.name, "date_order", f"{STD}involvement_start > {STD}involvement_end"))
    return rules


def standardise_sql(contract: Contract) -> str:
    """SELECT over ``raw`` (the agency's columns, text, plus ``_row``): the agency's columns
    trimmed (NULL when blank) beside ``std_<field>`` for every whitelisted field."""
    fields: dict[str, str] = {}
    for col in contract.columns:
        raw = f"NULLIF(trim({_q(col.name)}), '')"
        if col.type == "date":
            expr = f"CAST(try_strptime({raw}, $date_format) AS DATE)"
        elif col.field == "sex":
            expr = f"list_extract($sex_values, list_position($sex_codes, {raw}))"
        elif col.field == "service":
            expr = f"CASE WHEN list_contains($services, {raw}) THEN {raw} END"
        elif col.field == "postcode":
            expr = postcode_sql(raw)
        elif col.format in ("nhs_number", "upn"):
            expr = f"upper(regexp_replace({raw}, '\\s', '', 'g'))"
        elif col.field in ("given_name", "family_name"):
            expr = f"regexp_replace({raw}, '\\s+', ' ', 'g')"
        else:
            expr = raw
        fields[STD + col.field] = expr
    for field in ("local_id", "nhs_number", "upn", "involvement_start", "involvement_end"):
        fields.setdefault(STD + field, "NULL")  # GX's suite and staging name them all
    local = contract.column_for("local_id")
    assert local is not None
    local_raw = f"NULLIF(trim({_q(local.name)}), '')"
    fields[STD + "dup_count"] = (
        f"CASE WHEN {local_raw} IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY {local_raw}) END"
    )
    raw_cols = [f"NULLIF(trim({_q(c)}), '') AS {_q(c)}" for c in contract.column_names]
    select = ",\n  ".join(["_row", *raw_cols, *(f"{expr} AS {name}" for name, expr in fields.items())])
    return f"SELECT\n  {select}\nFROM raw"


# --------------------------------------------------------------------------- reading


def _open_binary(path: Path):  # noqa: ANN202
    """The file's bytes, decompressed when it is a .gz file."""
    if path.name.endswith(GZIP_SUFFIX):
        import gzip

        return gzip.open(path, "rb")
    return path.open("rb")


def safe_name(name: str) -> str:
    """A name from a file as receipts show it: formula-looking names are defused."""
    name = name[:100]
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


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
        names = ", ".join(safe_name(d) for d in dupes)
        raise FileRejected("duplicate_header", "columns named more than once: " + names)
    return header


def _batches(path: Path, contract: Contract, header: list[str], bad_lines: list[int]):  # noqa: ANN202
    """Record batches of the contract's columns (text), in file order; bad lines are skipped
    and their line numbers collected (the parser's row text is never kept)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row) -> str:  # noqa: ANN001 - row.text holds data: never keep it
        bad_lines.append(row.number if row.number is not None else -1)
        return "skip"

    read = pacsv.ReadOptions(
        column_names=header, skip_rows=1, encoding=contract.file.encoding, use_threads=False, block_size=BLOCK_BYTES
    )
    parse = pacsv.ParseOptions(
        delimiter=contract.file.delimiter, newlines_in_values=False, invalid_row_handler=on_invalid
    )
    known = set(contract.column_names)
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header},
        include_columns=[h for h in header if h in known],  # extras never read
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    source = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip") if path.name.endswith(GZIP_SUFFIX) else str(path)
    try:
        reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        yield from reader
    except UnicodeDecodeError:
        raise FileRejected("encoding", f"the file is not valid {contract.file.encoding}") from None
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError, EOFError):
        # The parser's message can quote a row: never pass it on.
        raise FileRejected("unreadable", "the file could not be parsed as delimited text") from None


def check_row_count(settings: Settings, agency: str, rows: int, history: list[int]) -> None:
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


# --------------------------------------------------------------------------- one file


@dataclass
class Validated:
    """A checked file's work database: tables ``std`` and ``rejected``."""

    db_path: Path

    def connect(self) -> Any:
        import duckdb

        return duckdb.connect(str(self.db_path), config={"threads": 2, "memory_limit": DUCKDB_MEMORY})

    def discard(self) -> None:
        for p in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal")):
            p.unlink(missing_ok=True)


def validate_file(
    settings: Settings,
    contract: Contract,
    path: Path,
    night: date,
    receipt: Receipt,
    history: list[int],
    on_accepted: Callable[[Any], Any] | None = None,
) -> Any:
    """Read and check one file and fill ``receipt``; raise FileRejected when it is unusable.

    ``on_accepted(connection)`` runs once the rows are checked and the policy accepts the
    file, before GX: it can read tables ``std`` and ``rejected`` (intake writes the staging
    file there); its result is returned. GX then runs last, as DuckDB lets another driver
    open the file only once ours has closed it. The work database is always deleted.
    Needs no key and no index database: ``childindex check`` runs exactly this, offline.
    """
    if path.is_symlink():
        raise FileRejected("symlink", "the drop folder entry is a symbolic link; links are never followed")
    header = read_header(path, contract)
    missing_required = [c.name for c in contract.columns if c.required and c.name not in header]
    if missing_required:
        raise FileRejected("missing_columns", "required columns missing: " + ", ".join(missing_required))
    receipt.columns_dropped = [safe_name(h) for h in header if h not in set(contract.column_names)]
    receipt.optional_columns_missing = [c.name for c in contract.columns if c.name not in header]

    settings.work_dir.mkdir(parents=True, exist_ok=True)
    validated = Validated(settings.work_dir / f"validate-{receipt.sha256[:16]}.duckdb")
    validated.discard()  # a crash may have left one behind
    try:
        con = validated.connect()
        try:
            _load(con, contract, path, header, receipt)
            check_row_count(settings, contract.agency, receipt.rows_read, history)
            _check_rows(con, contract, night, receipt)
            _apply_policy(settings, contract, receipt)
            outcome = on_accepted(con) if on_accepted else None
        finally:
            con.close()
        receipt.checks = _run_suite(validated, contract, night, receipt)
        return outcome
    finally:
        validated.discard()


def _load(con: Any, contract: Contract, path: Path, header: list[str], receipt: Receipt) -> None:
    """Stream the file into table ``raw``, numbering data rows (the header is not a row)."""
    import numpy as np
    import pyarrow as pa

    present = [h for h in header if h in set(contract.column_names)]
    columns = ", ".join(f"{_q(c)} VARCHAR" for c in contract.column_names)
    con.execute(f"CREATE TABLE raw (_row BIGINT, {columns})")
    bad_lines: list[int] = []
    next_row = 1
    for batch in _batches(path, contract, header, bad_lines):
        # The parser has already reported the bad lines up to the end of this batch: good
        # rows take the data row numbers that are not bad ones, in order.
        bad = np.array(sorted({n - 1 for n in bad_lines if n - 1 >= next_row}), dtype=np.int64)
        span = np.arange(next_row, next_row + batch.num_rows + len(bad), dtype=np.int64)
        rows = np.setdiff1d(span, bad, assume_unique=True)[: batch.num_rows]
        table = pa.Table.from_batches([batch]).append_column("_row", pa.array(rows))
        con.register("batch_in", table)
        select = ", ".join(_q(c) if c in present else f"NULL AS {_q(c)}" for c in contract.column_names)
        con.execute(f"INSERT INTO raw SELECT _row, {select} FROM batch_in")
        con.unregister("batch_in")
        next_row = int(rows[-1]) + 1 if batch.num_rows else next_row
    receipt.rows_read = con.execute("SELECT count(*) FROM raw").fetchall()[0][0] + len(bad_lines)
    receipt.bad_lines = sorted(n - 1 for n in bad_lines if n > 0)  # data row numbers


def _check_rows(con: Any, contract: Contract, night: date, receipt: Receipt) -> None:
    from childindex.receipts import RowRejection

    params = {
        "date_format": contract.date_format,
        "sex_codes": list(contract.sex_codes),
        "sex_values": list(contract.sex_codes.values()),
        "services": list(contract.services),
    }
    con.execute(f"CREATE TABLE std AS {standardise_sql(contract)}", params)
    con.execute("DROP TABLE raw")
    rules = row_rules(contract)
    checks = " UNION ALL ".join(
        f"SELECT _row AS row, {i} AS ord FROM std WHERE {r.predicate}" for i, r in enumerate(rules)
    )
    con.execute(f"CREATE TABLE rejected AS {checks}", {"night": night})
    counts = con.execute("SELECT count(DISTINCT row) FROM rejected").fetchall()[0][0]
    listed = con.execute(f"SELECT row, ord FROM rejected ORDER BY row, ord LIMIT {RECEIPT_ROW_LIMIT}").fetchall()
    rejections = [RowRejection(row=n, column="*", rule="field_count") for n in receipt.bad_lines]
    rejections += [RowRejection(row=r, column=rules[o].column, rule=rules[o].rule) for r, o in listed]
    rejections.sort(key=lambda r: r.row)
    receipt.rejected_rows = rejections[:RECEIPT_ROW_LIMIT]
    receipt.rejected_rows_total = len(receipt.bad_lines) + con.execute("SELECT count(*) FROM rejected").fetchall()[0][0]
    receipt.rows_rejected = counts + len(receipt.bad_lines)
    receipt.rows_accepted = receipt.rows_read - receipt.rows_rejected
    by_rule = con.execute("SELECT ord, count(*) FROM rejected GROUP BY ord").fetchall()
    receipt.rule_counts = {f"{rules[o].column}:{rules[o].rule}": n for o, n in sorted(by_rule)}


def _run_suite(validated: Validated, contract: Contract, night: date, receipt: Receipt) -> list[dict]:
    """The GX suite on table ``std``; every expectation must count what the SQL rule counted."""
    from childindex.expectations import ValidationEnginesDisagree, run_suite_on_duckdb

    checks = run_suite_on_duckdb(validated.db_path, contract.agency, night)
    for check in checks:
        sql_count = receipt.rule_counts.get(f"{check.column}:{check.rule}", 0)
        if sql_count != check.unexpected_count:
            raise ValidationEnginesDisagree(
                f"{check.rule} on {check.column}: GX counted {check.unexpected_count}, the SQL rules {sql_count}"
            )
    return [c.as_dict() for c in checks]


def _apply_policy(settings: Settings, contract: Contract, receipt: Receipt) -> None:
    if receipt.rows_read and receipt.rows_accepted == 0:
        raise FileRejected("all_rows_rejected", "every row broke at least one rule")
    share = receipt.rows_rejected / max(receipt.rows_read, 1)
    limit = settings.validation.max_share(contract.agency)
    if share > limit:
        raise FileRejected(
            "rejected_share_over_threshold",
            f"{share:.1%} of rows were rejected; the limit for {contract.agency} is {limit:.1%}",
        )
