"""File-level checks: every problem with a file as a whole, found in one pass and reported together.

Before any row is read, :func:`check_file_level` looks at what the file really is: its
encoding (a byte-order mark, UTF-16, bytes that are not the contract's encoding, located by
byte and line), its delimiter (a semicolon file sent for a comma contract is said to be one,
not "every column missing"), its header (a renamed or misspelt column gets the nearest
contract name as a hint) and, for a compressed file, how far it inflates. Every problem
found is raised at once (:meth:`childindex.errors.FileRejected.together`), so the sender
fixes them all in one go.

Nothing here keeps or says a value from the file. Header names are column names, not data,
and are quoted only from a line that is a header: one that holds at least one of the
contract's column names (a file without a header row has a child's data on its first line).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from childindex.contracts.contract import GZIP_SUFFIX, Contract, all_contracts
from childindex.contracts.describe import delimiter_name, encoding_name, same_encoding
from childindex.errors import FileRejected
from childindex.receipts import safe_name
from childindex.validation.reader import open_binary

HEAD_BYTES = 1 << 20  # the header row is read from at most this much of the file's start
SCAN_BLOCK = 1 << 22
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
UTF8_BOM, UTF16_BOMS = b"\xef\xbb\xbf", (b"\xff\xfe", b"\xfe\xff")
C1_BYTES = re.compile(rb"[\x80-\x9f]")  # not text in Latin-1; Windows-1252 puts curly quotes and the euro sign here
NON_ASCII = re.compile(rb"[\x80-\xff]")
QUOTABLE_NAME = 64  # a header name longer than this is not shown (it is not a column name anyone typed)


def check_file_level(path: Path, contract: Contract, max_inflated_bytes: int | None = None) -> list[str]:
    """The file's header (column names, trimmed) when it has no file-level problem.

    Raises:
        FileRejected: every file-level problem found (``problems``), in the order a
            sender would fix them: encoding, unreadable bytes, size, delimiter, header.
    """
    if path.stat().st_size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    try:
        with open_binary(path) as fh:
            head = fh.read(HEAD_BYTES)
    except (OSError, EOFError):  # gzip.BadGzipFile is an OSError
        raise FileRejected("unreadable", "the compressed file is corrupt") from None
    if not head.strip():
        raise FileRejected("empty_file", "the file has no header row")
    problems: list[FileRejected] = []
    utf16 = head.startswith(UTF16_BOMS) or b"\x00" in head.split(b"\n", 1)[0]
    expected = encoding_name(contract.file.encoding)
    if utf16:
        problems.append(FileRejected("encoding", f"the file is UTF-16; the contract expects {expected}"))
    elif head.startswith(UTF8_BOM) and not same_encoding(contract.file.encoding, "utf-8"):
        problems.append(
            FileRejected(
                "encoding", f"the file is UTF-8 (it starts with a byte-order mark); the contract expects {expected}"
            )
        )
    else:
        problems += scan_bytes(path, contract, max_inflated_bytes)
    line = _first_line(head, utf16, contract.file.encoding)
    if line is None:
        return _raise(problems, FileRejected("empty_file", "the file has no header row"))
    if "\r" in line.rstrip("\r"):
        cr = FileRejected(
            "unreadable", "the lines end with a carriage return only (CR): save the file with LF or CRLF line endings"
        )
        return _raise(problems, cr)
    header, delimiter_problem = _header_and_delimiter(line, contract)
    if delimiter_problem is not None:
        problems.append(delimiter_problem)
    if header is None:
        problems.append(FileRejected("unreadable", "the header row could not be parsed (check its quotes)"))
    else:
        problems += check_header(contract, header)
    if problems:
        raise FileRejected.together(problems)
    assert header is not None
    return header


def _raise(problems: list[FileRejected], last: FileRejected) -> list[str]:
    raise FileRejected.together([*problems, last])


# --------------------------------------------------------------------------- bytes


@dataclass
class _Where:
    """Where something was first seen: byte offset from the file's start and line (from 1)."""

    byte: int
    line: int

    def __str__(self) -> str:
        return f"line {self.line} (byte offset {self.byte})"


def scan_bytes(path: Path, contract: Contract, max_inflated_bytes: int | None = None) -> list[FileRejected]:
    """One streaming pass over the (decompressed) bytes: bytes that are not text in the
    contract's encoding (the first located by byte and line, and what the file seems to be
    instead), NUL bytes, and a compressed file that inflates past ``max_inflated_bytes``
    (stopped as soon as it does; nothing is written).

    Blocks are cut after their last line feed, so a character and a line are never split
    (line feed is the same byte in every encoding a contract may name; UTF-16 is refused
    before this). ASCII blocks, the usual case, are never decoded."""
    encoding = contract.file.encoding
    latin1 = same_encoding(encoding, "latin-1")
    utf8 = same_encoding(encoding, "utf-8")
    compressed = path.name.endswith(GZIP_SUFFIX)
    offset, lines, carry = 0, 0, b""  # bytes and line feeds before ``carry``
    bad: _Where | None = None  # the first byte that is not text in the contract's encoding
    c1: _Where | None = None  # the first byte 0x80-0x9F (Windows-1252 in a Latin-1 file)
    nul: _Where | None = None
    first_non_ascii: _Where | None = None
    valid_utf8 = True
    problems: list[FileRejected] = []
    try:
        with open_binary(path) as fh:
            while True:
                data = fh.read(SCAN_BLOCK)
                inflated = offset + len(carry) + len(data)
                if compressed and max_inflated_bytes is not None and inflated > max_inflated_bytes:
                    problems.append(
                        FileRejected(
                            "too_large",
                            f"the compressed file inflates past {max_inflated_bytes} bytes "
                            "(CHILDINDEX_VALIDATION__MAX_INFLATED_BYTES); send it in parts or uncompressed",
                        )
                    )
                    break
                block = carry + data
                cut = len(block) if not data else block.rfind(b"\n") + 1
                chunk, carry = block[:cut], block[cut:]
                if nul is None and (i := chunk.find(b"\x00")) >= 0:
                    nul = _where(chunk, i, offset, lines)
                if not chunk.isascii():
                    if first_non_ascii is None:
                        first_non_ascii = _where(chunk, _search(NON_ASCII, chunk), offset, lines)
                    if bad is None:
                        bad = _undecodable(chunk, encoding, offset, lines)
                    if latin1 and c1 is None and (m := C1_BYTES.search(chunk)) is not None:
                        c1 = _where(chunk, m.start(), offset, lines)
                    if valid_utf8 and not utf8:
                        valid_utf8 = _decodes(chunk, "utf-8")
                offset, lines = offset + len(chunk), lines + chunk.count(b"\n")
                if not data and not carry:
                    break
    except (OSError, EOFError):  # a corrupt gzip stream
        return [*problems, FileRejected("unreadable", "the compressed file is corrupt")]
    expected = encoding_name(encoding)
    utf8_instead = first_non_ascii is not None and valid_utf8 and not utf8
    detail = ""
    if bad is not None:
        seems = "UTF-8" if utf8_instead else "Windows-1252 or Latin-1" if utf8 else "another encoding"
        detail = f"the file is not valid {expected}: first at {bad}; it looks like {seems}"
    elif utf8_instead:
        detail = (
            f"the file is UTF-8 (its first character outside ASCII, at {first_non_ascii}, is written the UTF-8 way); "
            f"the contract expects {expected}"
        )
    elif c1 is not None:
        detail = (
            f"the file has bytes 0x80-0x9F, which are not text in Latin-1: first at {c1}; it looks like "
            "Windows-1252 (cp1252)"
        )
    if detail:
        problems.insert(0, FileRejected("encoding", detail))
    if nul is not None:
        problems.append(FileRejected("unreadable", f"the file contains NUL bytes: first at {nul}"))
    return problems


def _where(chunk: bytes, index: int, offset: int, lines: int) -> _Where:
    return _Where(byte=offset + index, line=lines + chunk.count(b"\n", 0, index) + 1)


def _search(pattern: re.Pattern[bytes], chunk: bytes) -> int:
    m = pattern.search(chunk)
    return m.start() if m else 0


def _decodes(chunk: bytes, encoding: str) -> bool:
    try:
        chunk.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(chunk: bytes, encoding: str, offset: int, lines: int) -> _Where | None:
    try:
        chunk.decode(encoding)
    except UnicodeDecodeError as exc:
        return _where(chunk, exc.start, offset, lines)
    except LookupError:
        return None
    return None


# --------------------------------------------------------------------------- header


def _first_line(head: bytes, utf16: bool, encoding: str) -> str | None:
    """The first line as text, the byte-order mark dropped; None when it is blank. Decoded
    as UTF-16 when the file is, else with the contract's encoding or, where that fails (an
    encoding problem already), the first of UTF-8, Windows-1252 and Latin-1 that reads it."""
    line = ""
    if utf16:
        codec = "utf-16" if head.startswith(UTF16_BOMS) else "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        text = head[: len(head) // 2 * 2].decode(codec, errors="replace")
        line = text.split("\n", 1)[0]
    else:
        raw = head.split(b"\n", 1)[0].removeprefix(UTF8_BOM)
        for codec in (encoding, "utf-8", "cp1252", "latin-1"):
            try:
                line = raw.decode(codec)
                break
            except (UnicodeDecodeError, LookupError):
                continue
    line = line.lstrip("\ufeff").rstrip("\r")
    return line if line.strip() else None


def _split(line: str, delimiter: str) -> list[str] | None:
    try:
        return [h.strip() for h in next(csv.reader(io.StringIO(line), delimiter=delimiter), [])]
    except csv.Error:
        return None


def _header_and_delimiter(line: str, contract: Contract) -> tuple[list[str] | None, FileRejected | None]:
    """The header split by the delimiter the file really uses, and a problem when that is
    not the contract's. The real one is the candidate whose split finds the most of the
    contract's column names (any case); with none found, the one that splits the line
    when the contract's does not."""
    ours = contract.file.delimiter
    names = {c.casefold() for c in contract.column_names}

    def score(d: str) -> tuple[int, int]:
        fields = _split(line, d) or []
        return sum(f.casefold() in names for f in fields), len(fields)

    scores = {d: score(d) for d in dict.fromkeys((ours, *CANDIDATE_DELIMITERS))}
    best = max(scores, key=lambda d: scores[d])
    found, width = scores[best]
    if best != ours and (found > scores[ours][0] or (found == 0 and scores[ours][1] == 1 and width > 1)):
        problem = FileRejected(
            "delimiter",
            f"the file is separated by {delimiter_name(best, plural=True)}; the contract expects "
            f"{delimiter_name(ours, plural=True)}",
        )
        return _split(line, best), problem
    return _split(line, ours), None


def check_header(contract: Contract, header: list[str]) -> list[FileRejected]:
    """Required columns first: a file without a header row fails here, so its first data
    row is never mistaken for column names (and never quoted in a receipt). A missing
    column that a column outside the contract resembles gets that column as a hint."""
    problems = []
    # A header names at least one column as this contract, its fields or another contract do.
    known = set().union(*(_aliases(contract, col.name) for col in contract.columns))
    looks_like_header = any(_squash(h) in known for h in header)
    missing = [c for c in contract.columns if c.required and c.name not in header]
    if missing and not looks_like_header:
        required = ", ".join(c.name for c in contract.columns if c.required)
        problems.append(
            FileRejected(
                "missing_columns",
                "the first line has none of the contract's column names: the file must start with a header row "
                f"naming its columns (required: {required})",
            )
        )
        return problems
    if missing:
        strangers = [(i, h) for i, h in enumerate(header, 1) if h not in set(contract.column_names)]
        hints = []
        for col in missing:
            near = nearest(contract, col.name, strangers)
            hint = f" (column {near[0]} is {safe_name(near[1])}: rename it {col.name}?)" if near else ""
            hints.append(col.name + hint)
        problems.append(FileRejected("missing_columns", "required columns missing: " + "; ".join(hints)))
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        shown = [d for d in dupes if d in contract.column_names]
        detail = ", ".join(shown) if shown else f"{len(dupes)} column names outside the contract"
        problems.append(FileRejected("duplicate_header", "columns named more than once: " + detail))
    return problems


def nearest(contract: Contract, column: str, strangers: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The header column (position from 1, name) outside the contract that is most likely
    ``column`` renamed: the same name but for case and punctuation, or the name that its
    whitelisted field or another contract gives the same field, or a close spelling of any
    of those (difflib). None when nothing is close."""
    aliases = _aliases(contract, column)
    quotable = [(i, h) for i, h in strangers if 0 < len(h) <= QUOTABLE_NAME]
    for i, h in quotable:
        if _squash(h) in aliases:
            return i, h
    best: tuple[float, int, str] | None = None
    for i, h in quotable:
        ratio = max(difflib.SequenceMatcher(None, _squash(h), alias).ratio() for alias in aliases)
        if ratio >= 0.75 and (best is None or ratio > best[0]):
            best = (ratio, i, h)
    return (best[1], best[2]) if best else None


def _aliases(contract: Contract, column: str) -> set[str]:
    """``column``'s names, squashed: its own, its whitelisted field's, and every contract's
    name for that field."""
    field = next(c.field for c in contract.columns if c.name == column)
    names = {column, field} | {c.name for other in all_contracts().values() if (c := other.column_for(field))}
    return {_squash(n) for n in names}


def _squash(name: str) -> str:
    """A column name compared without case, spaces or punctuation: ``Date_Of_Birth`` is ``dateofbirth``."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())
