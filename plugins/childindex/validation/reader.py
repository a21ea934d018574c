"""Reading an extract: a streamed, standardised copy in Parquet parts (after the file-level
checks of :mod:`childindex.validation.file_checks`).

The file is read in blocks (pyarrow, in the contract's encoding; a block at a time, never
the whole file). Each block goes through the standardising SELECT
(:func:`childindex.validation.sql.standardise_sql`) and is written as one Parquet part in the
work folder; DuckDB then reads all the parts as table ``std``.

Nothing here keeps, logs or raises a value from the file: parser messages can quote a row,
so they are classified and dropped.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from childindex.contracts.contract import GZIP_SUFFIX, Contract
from childindex.errors import FileRejected
from childindex.validation.sql import standardise_params, standardise_sql

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 16 << 20  # pyarrow reads this much text at a time

T = TypeVar("T")


@dataclass(frozen=True)
class Loaded:
    """What loading counted: rows read (bad lines included) and the bad lines' data row numbers."""

    rows_read: int
    bad_lines: list[int]


def write_parts(path: Path, contract: Contract, header: list[str], parts: Path) -> Loaded:
    """Stream the file through the standardising SELECT into Parquet parts under ``parts``,
    a batch at a time, numbering data rows (the header is not a row)."""
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = [h for h in header if h in set(contract.column_names)]
    params = standardise_params(contract)
    select = standardise_sql(contract, "batch_in")
    batch_con = duckdb.connect(config={"threads": 2})
    bad_lines: list[int] = []
    next_row, good, part = 1, 0, 0
    empty = pa.RecordBatch.from_pydict({c: pa.array([], pa.string()) for c in present})
    try:
        for batch in prefetched(_with_one(record_batches(path, contract, header, bad_lines), empty)):
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
            pq.write_table(standardised, parts / f"part-{part:05d}.parquet", compression="none")
            batch_con.unregister("batch_in")
            part += 1
            good += batch.num_rows
            next_row = int(rows[-1]) + 1 if batch.num_rows else next_row
    finally:
        batch_con.close()
    return Loaded(rows_read=good + len(bad_lines), bad_lines=sorted(n - 1 for n in bad_lines if n > 0))


# --------------------------------------------------------------------------- bytes


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is a .gz file."""
    if path.name.endswith(GZIP_SUFFIX):
        import gzip

        return gzip.open(path, "rb")
    return path.open("rb")


# --------------------------------------------------------------------------- parsing


def record_batches(path: Path, contract: Contract, header: list[str], bad_lines: list[int]) -> Iterator[pa.RecordBatch]:
    """Record batches of the contract's columns (text), in file order; bad lines are skipped
    and their line numbers collected (the parser's row text is never kept)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # row.text holds data: never keep it.
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
        with open_binary(path) as raw:
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

    def __init__(self, raw: io.BufferedIOBase, block: int = BLOCK_BYTES) -> None:
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


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` with the next ones produced in a background thread.

    pyarrow's parser releases the GIL, so the second core parses while DuckDB works on the
    batch in hand. At most ``depth`` items wait, which bounds memory. Errors (a file
    rejected mid-way) surface in the consumer, in order.
    """
    import queue
    import threading

    q: queue.Queue[object] = queue.Queue(maxsize=depth)
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
            for item in items:
                if not put(item):
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
            yield cast(T, item)  # anything but the sentinel and an error is an item
    finally:
        stop.set()
        thread.join()


def _with_one(batches: Iterable[T], empty: T) -> Iterator[T]:
    """The batches, or one empty batch when there are none (so the schema still exists)."""
    seen = False
    for batch in batches:
        seen = True
        yield batch
    if not seen:
        yield empty
