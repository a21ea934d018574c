"""Validation of one extract: streamed into DuckDB, checked by SQL rules and by the GX suite.

The file is read in blocks (pyarrow, in the contract's encoding; a block at a time, never
the whole file) into a DuckDB database in the work folder. One table, ``std``, then holds
every row: the agency's columns, trimmed, beside the standardised whitelisted fields
(``std_<field>``). Each row rule is a SQL predicate over ``std``; the failing
(row, column, rule) triples go to ``rejected`` in one set operation. The agency's Great
Expectations suite (:mod:`childindex.validation.gx.suites`) then runs on the same table through
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

from childindex.contracts.contract import Contract
from childindex.errors import FileRejected
from childindex.whitelist import MAX_LENGTH

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
BLANK = " \t\r\n\u00a0"  # what trimming removes: a value of only these is blank


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


def date_pattern(date_format: str) -> str:
    """A regex with the shape of a strftime format: %Y is four digits, so "19/07/13" does
    not pass as the year 13 (strptime alone would take it)."""
    import re

    parts = {
        "%Y": "[0-9]{4}",
        "%m": "[0-9]{1,2}",
        "%d": "[0-9]{1,2}",
        "%b": "[A-Za-z]{3}",
        "%H": "[0-9]{2}",
        "%M": "[0-9]{2}",
        "%S": "[0-9]{2}",
    }
    out, i = [], 0
    while i < len(date_format):
        token = date_format[i : i + 2]
        if token in parts:
            out.append(parts[token])
            i += 2
        else:
            out.append(re.escape(date_format[i]))
            i += 1
    return "".join(out)


def date_valid_sql(col: str, date_format: str) -> str:
    fmt = date_format.replace("'", "''")
    pattern = date_pattern(date_format).replace("'", "''")
    return f"(regexp_full_match({col}, '{pattern}') AND try_strptime({col}, '{fmt}') IS NOT NULL)"


def normalise_name_sql(col: str) -> str:
    """Upper case letters only, accents stripped: the form exact matching compares."""
    return f"regexp_replace(upper(strip_accents({col})), '[^A-Z]', '', 'g')"


def postcode_sql(col: str) -> str:
    """Upper case, inner space restored before the last three characters."""
    # A lambda binds the squashed form once instead of recomputing it five times.
    return (
        f"list_transform([upper(replace({col}, ' ', ''))], lambda p: CASE WHEN length(p) BETWEEN 5 AND 7 "
        f"THEN substr(p, 1, length(p) - 3) || ' ' || substr(p, -3) ELSE p END)[1]"
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
        if col.field in MAX_LENGTH:
            rules.append(Rule(col.name, "max_length", f"length({raw}) > {MAX_LENGTH[col.field]}"))
        if col.type == "date":
            rules.append(Rule(col.name, "date_format", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.field == "date_of_birth":
            rules.append(
                Rule(
                    col.name, "date_of_birth_range", f"{std} > $night OR {std} < $night - INTERVAL {MAX_AGE_YEARS} YEAR"
                )
            )
        if col.field in ("sex", "service", "sensitive"):
            rules.append(Rule(col.name, "code_set", f"{raw} IS NOT NULL AND {std} IS NULL"))
        if col.format == "nhs_number":
            rules.append(Rule(col.name, "nhs_number_check", f"{raw} IS NOT NULL AND NOT {nhs_valid_sql(std)}"))
        if col.format == "upn":
            rules.append(Rule(col.name, "upn_check", f"{raw} IS NOT NULL AND NOT {upn_valid_sql(std)}"))
        if col.format == "postcode":
            rules.append(Rule(col.name, "postcode_format", f"{raw} IS NOT NULL AND NOT {postcode_valid_sql(std)}"))
        if col.field == "local_id":
            # Every row sharing an id is rejected: which of them is right cannot be known.
            rules.append(Rule(col.name, "duplicate_local_id", f"{STD}local_id IN (SELECT id FROM duplicated_ids)"))
    start, end = contract.column_for("involvement_start"), contract.column_for("involvement_end")
    if start and end:
        rules.append(Rule(start.name, "date_order", f"{STD}involvement_start > {STD}involvement_end"))
    return rules


def standardise_sql(contract: Contract, source: str = "raw") -> str:
    """SELECT over ``source`` (the agency's columns as text, plus ``_row``): the agency's
    columns trimmed (NULL when blank) beside ``std_<field>`` for every whitelisted field.

    Row-local only, so it runs batch by batch while the file streams in."""
    fields: dict[str, str] = {}
    for col in contract.columns:
        raw = _q(col.name)  # already trimmed and NULL when blank, by the inner SELECT
        if col.type == "date":
            parsed = f"CAST(try_strptime({raw}, $date_format) AS DATE)"
            expr = f"CASE WHEN regexp_full_match({raw}, $date_pattern) THEN {parsed} END"
        elif col.field == "sex":
            expr = f"list_extract($sex_values, list_position($sex_codes, {raw}))"
        elif col.field == "service":
            expr = f"CASE WHEN list_contains($services, {raw}) THEN {raw} END"
        elif col.field == "sensitive":
            expr = f"list_extract($sensitive_values, list_position($sensitive_codes, {raw}))"
        elif col.field == "postcode":
            expr = postcode_sql(raw)
        elif col.format in ("nhs_number", "upn"):
            expr = f"upper(replace({raw}, ' ', ''))"
        elif col.field in ("given_name", "family_name"):
            # Collapse runs of spaces; the regex only runs where there is one to collapse.
            expr = f"CASE WHEN contains({raw}, '  ') THEN regexp_replace({raw}, ' +', ' ', 'g') ELSE {raw} END"
        else:
            expr = raw
        fields[STD + col.field] = expr
    for field in ("local_id", "nhs_number", "upn", "involvement_start", "involvement_end", "sensitive"):
        fields.setdefault(STD + field, "NULL")  # GX's suite and staging name them all
    cleaned = ", ".join(f"NULLIF(trim({_q(c)}, $blank), '') AS {_q(c)}" for c in contract.column_names)
    select = ",\n  ".join(
        ["_row", *(_q(c) for c in contract.column_names), *(f"{expr} AS {name}" for name, expr in fields.items())]
    )
    return f"SELECT\n  {select}\nFROM (SELECT _row, {cleaned} FROM {source})"


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
    if first.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in first:
        raise FileRejected("encoding", f"the file looks like UTF-16; the contract's encoding is {encoding}")
    if first.startswith(b"\xef\xbb\xbf") and encoding.replace("-", "").lower() not in ("utf8", "utf8sig"):
        raise FileRejected(
            "encoding", f"the file starts with a UTF-8 byte-order mark; the contract's encoding is {encoding}"
        )
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError:
        raise FileRejected("encoding", f"the header is not valid {encoding}") from None
    text = text.lstrip("\ufeff")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=contract.file.delimiter), [])
    except csv.Error:
        raise FileRejected("unreadable", "the header row could not be parsed (check line endings and quotes)") from None
    return [h.strip() for h in header]


def check_header(contract: Contract, header: list[str]) -> None:
    """Required columns first: a file without a header row fails here, so its first data
    row is never mistaken for column names (and never quoted in a receipt)."""
    missing_required = [c.name for c in contract.columns if c.required and c.name not in header]
    if missing_required:
        raise FileRejected("missing_columns", "required columns missing: " + ", ".join(missing_required))
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        known = [d for d in dupes if d in contract.column_names]
        detail = ", ".join(known) if known else f"{len(dupes)} column names outside the contract"
        raise FileRejected("duplicate_header", "columns named more than once: " + detail)


def scan_bytes(path: Path, contract: Contract) -> None:
    """One streaming pass over the bytes for what the CSV parser would let through: NUL
    bytes (never text) and, in a Latin-1 file, C1 control bytes (a Windows-1252 file sent
    as Latin-1 puts its curly quotes and euro signs there)."""
    latin1 = contract.file.encoding.replace("-", "").replace("_", "").lower() in ("latin1", "iso88591")
    c1 = bytes(range(0x80, 0xA0))
    try:
        with _open_binary(path) as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                if b"\x00" in block:
                    raise FileRejected("unreadable", "the file contains NUL bytes")
                if latin1 and len(block.translate(None, c1)) != len(block):
                    raise FileRejected(
                        "encoding",
                        "the file contains bytes 0x80-0x9F, which are not text in Latin-1 (is it Windows-1252?)",
                    )
    except (OSError, EOFError):  # a corrupt gzip stream
        raise FileRejected("unreadable", "the compressed file is corrupt") from None


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
    try:
        with _open_binary(path) as raw:
            source = pa.PythonFile(OneRecordPerLine(raw), mode="r")
            reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
            yield from reader
    except UnicodeDecodeError:
        raise FileRejected("encoding", f"the file is not valid {contract.file.encoding}") from None
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError, EOFError) as exc:
        # The parser's message can quote a row: never pass it on, only classify it.
        if "utf8" in str(exc).lower().replace("-", ""):
            raise FileRejected("encoding", f"the file is not valid {contract.file.encoding}") from None
        raise FileRejected("unreadable", "the file could not be parsed as delimited text") from None


class OneRecordPerLine(io.RawIOBase):
    """The file's bytes with every line whose double quotes do not pair up blanked out.

    The contract says a record is one line. A CSV parser instead lets an open quote run on
    to the next line break, and the next, so one stray quote would swallow the rest of the
    file into a single record, and a quoted line break would sneak into a value. Each line
    with an odd number of quotes has its bytes overwritten with ``?`` here (the line count
    and line lengths stay the same), so the parser sees a one-field record: that row is
    rejected for its field count, and every other line is read as sent.

    Works on bytes: quote and line feed are the same byte in every encoding a contract may
    name (UTF-8, Windows-1252, Latin-1; UTF-16 is refused before this). Vectorised, and
    only for blocks that hold a quote at all.
    """

    def __init__(self, raw: Any, block: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._raw, self._block = raw, block
        self._carry = b""  # a line not yet ended
        self._out = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out and not self._eof:
            self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _fill(self) -> None:
        data = self._raw.read(self._block)
        if not data:
            self._eof, lines, self._carry = True, self._carry, b""
        else:
            data = self._carry + data
            end = data.rfind(b"\n") + 1
            lines, self._carry = data[:end], data[end:]
        self._out = memoryview(blank_unpaired_quotes(lines) if b'"' in lines else lines)


def blank_unpaired_quotes(lines: bytes) -> bytes:
    """``lines`` with each line that holds an odd number of ``"`` overwritten by ``?``."""
    import numpy as np

    arr = np.frombuffer(lines, np.uint8)
    breaks = np.flatnonzero(arr == 0x0A)
    ends = breaks if lines.endswith(b"\n") else np.append(breaks, len(arr))
    quotes_before_end = np.searchsorted(np.flatnonzero(arr == 0x22), ends)
    odd = np.flatnonzero(np.diff(quotes_before_end, prepend=0) & 1)
    if not len(odd):
        return lines
    starts = np.concatenate(([0], breaks + 1))[: len(ends)]
    inside = np.zeros(len(arr) + 1, np.int8)  # +1 at each bad line's start, -1 at its end
    np.add.at(inside, starts[odd], 1)
    np.add.at(inside, ends[odd], -1)
    out = arr.copy()
    out[np.cumsum(inside[:-1], dtype=np.int8) > 0] = ord("?")
    return out.tobytes()


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
    """A file's work folder: ``work.duckdb`` (view ``std`` over the standardised Parquet
    parts, tables ``rejected`` and ``duplicated_ids``). All of it is the file's data."""

    folder: Path

    @property
    def db_path(self) -> Path:
        return self.folder / "work.duckdb"

    @property
    def parts(self) -> Path:
        return self.folder / "std"

    def connect(self) -> Any:
        import duckdb

        return duckdb.connect(
            str(self.db_path),
            config={"threads": 2, "memory_limit": DUCKDB_MEMORY, "temp_directory": str(self.folder / "spill")},
        )

    def discard(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


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
    check_header(contract, header)
    scan_bytes(path, contract)
    receipt.columns_dropped = [safe_name(h) for h in header if h not in set(contract.column_names)]
    receipt.optional_columns_missing = [c.name for c in contract.columns if c.name not in header]

    settings.work_dir.mkdir(parents=True, exist_ok=True)
    import uuid

    # A fresh name each time: GX's driver may still hold an earlier run's file open.
    validated = Validated(settings.work_dir / f"validate-{receipt.sha256[:16]}-{uuid.uuid4().hex[:8]}")
    try:
        validated.parts.mkdir(parents=True)
        con = validated.connect()
        try:
            _load(validated, con, contract, path, header, receipt)
            check_row_count(settings, contract.agency, receipt.rows_read, history)
            _check_rows(con, contract, night, receipt)
            _apply_policy(settings, contract, receipt)
            receipt.rows_sensitive = con.execute(
                f"SELECT count(*) FROM std ANTI JOIN rejected ON rejected.row = std._row WHERE {STD}sensitive"
            ).fetchall()[0][0]
            outcome = on_accepted(con) if on_accepted else None
        finally:
            con.close()
        receipt.checks = _run_suite(validated, contract, night, receipt)
        return outcome
    finally:
        validated.discard()


def _load(validated: Validated, con: Any, contract: Contract, path: Path, header: list[str], receipt: Receipt) -> None:
    """Stream the file through the standardising SELECT into Parquet parts, a batch at a
    time, numbering data rows (the header is not a row); view ``std`` reads them all."""
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = [h for h in header if h in set(contract.column_names)]
    params = {
        "date_format": contract.date_format,
        "sex_codes": list(contract.sex_codes),
        "sex_values": list(contract.sex_codes.values()),
        "services": list(contract.services),
        "blank": BLANK,
        "date_pattern": date_pattern(contract.date_format),
    }
    if contract.sensitive_codes:  # DuckDB refuses parameters a statement does not use
        params["sensitive_codes"] = list(contract.sensitive_codes)
        params["sensitive_values"] = list(contract.sensitive_codes.values())
    select = standardise_sql(contract, "batch_in")
    batch_con = duckdb.connect(config={"threads": 2})
    bad_lines: list[int] = []
    next_row, good, part = 1, 0, 0
    empty = pa.RecordBatch.from_pydict({c: pa.array([], pa.string()) for c in present})
    try:
        for batch in _prefetched(_with_one(_batches(path, contract, header, bad_lines), empty)):
            # The parser has reported the bad lines up to the end of this batch: good rows
            # take the data row numbers that are not bad ones, in order.
            bad = np.array(sorted({n - 1 for n in bad_lines if n - 1 >= next_row}), dtype=np.int64)
            span = np.arange(next_row, next_row + batch.num_rows + len(bad), dtype=np.int64)
            rows = np.setdiff1d(span, bad, assume_unique=True)[: batch.num_rows]
            table = pa.Table.from_batches([batch]).append_column("_row", pa.array(rows, pa.int64()))
            for c in contract.column_names:  # absent optional columns are NULL
                if c not in table.column_names:
                    table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
            batch_con.register("batch_in", table)
            # DuckDB standardises; pyarrow writes (faster than DuckDB's writer for text, and
            # the parts are transient: no compression).
            standardised = batch_con.sql(select, params=params).to_arrow_table()
            pq.write_table(standardised, validated.parts / f"part-{part:05d}.parquet", compression="none")
            batch_con.unregister("batch_in")
            part += 1
            good += batch.num_rows
            next_row = int(rows[-1]) + 1 if batch.num_rows else next_row
    finally:
        batch_con.close()
    con.execute(f"CREATE VIEW std AS SELECT * FROM read_parquet('{_sql_str(validated.parts)}/*.parquet')")
    receipt.rows_read = good + len(bad_lines)
    receipt.bad_lines = sorted(n - 1 for n in bad_lines if n > 0)  # data row numbers


def _prefetched(batches: Any, depth: int = 2) -> Any:
    """Iterate ``batches`` with the next ones parsed in a background thread.

    pyarrow's parser releases the GIL, so the second core parses while DuckDB works on the
    batch in hand. At most ``depth`` batches wait, which bounds memory. Errors (a file
    rejected mid-way) surface in the consumer, in order.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand an item over unless the consumer has gone; never blocks for good."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="childindex-csv-reader", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _with_one(batches: Any, empty: Any) -> Any:
    """The batches, or one empty batch when there are none (so the schema still exists)."""
    seen = False
    for batch in batches:
        seen = True
        yield batch
    if not seen:
        yield empty


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _check_rows(con: Any, contract: Contract, night: date, receipt: Receipt) -> None:
    """Every rule in one scan of ``std``: (row, rule) pairs for the failures, into ``rejected``."""
    from childindex.receipts import RowRejection

    con.execute(
        f"CREATE TABLE duplicated_ids AS SELECT {STD}local_id AS id FROM std "
        f"WHERE {STD}local_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1"
    )
    rules = row_rules(contract)
    flags = ", ".join(f"CASE WHEN {r.predicate} THEN {i} END" for i, r in enumerate(rules))
    con.execute(
        f"CREATE TABLE rejected AS SELECT row, ord FROM "
        f"(SELECT _row AS row, unnest([{flags}]) AS ord FROM std) WHERE ord IS NOT NULL",
        {"night": night},
    )
    by_rule = con.execute("SELECT ord, count(*) FROM rejected GROUP BY ord").fetchall()
    receipt.rule_counts = {f"{rules[o].column}:{rules[o].rule}": n for o, n in sorted(by_rule)}
    listed = con.execute(f"SELECT row, ord FROM rejected ORDER BY row, ord LIMIT {RECEIPT_ROW_LIMIT}").fetchall()
    rejections = [RowRejection(row=n, column="*", rule="field_count") for n in receipt.bad_lines]
    rejections += [RowRejection(row=r, column=rules[o].column, rule=rules[o].rule) for r, o in listed]
    rejections.sort(key=lambda r: r.row)
    receipt.rejected_rows = rejections[:RECEIPT_ROW_LIMIT]
    receipt.rejected_rows_total = len(receipt.bad_lines) + sum(n for _, n in by_rule)
    rows_with_rules = con.execute("SELECT count(DISTINCT row) FROM rejected").fetchall()[0][0]
    receipt.rows_rejected = rows_with_rules + len(receipt.bad_lines)
    receipt.rows_accepted = receipt.rows_read - receipt.rows_rejected


def _run_suite(validated: Validated, contract: Contract, night: date, receipt: Receipt) -> list[dict]:
    """The GX suite on table ``std``; every expectation must count what the SQL rule counted."""
    from childindex.errors import ValidationEnginesDisagree
    from childindex.validation.gx.suites import run_suite_on_duckdb

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
