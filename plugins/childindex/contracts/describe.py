"""A contract's formats in words, for the people who write extracts: file names with an
example, dates as ``YYYY-MM-DD, like 2014-03-09``, delimiters and encodings by name.

Receipts, ``childindex check`` and the contract pages all say them from here, so a file name
is never explained by a raw regular expression.
"""

from __future__ import annotations

import codecs
import re
from datetime import date

from childindex.contracts.contract import GZIP_SUFFIX, Contract

EXAMPLE_DATE = date(2014, 3, 9)  # day and month differ, and neither is above 12 by accident
EXAMPLE_NIGHT = date(2026, 11, 24)
DATE_PARTS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%y": "YY", "%b": "Mon", "%H": "hh", "%M": "mm", "%S": "ss"}
# The formats a night in a file name may take (receipts read a night by its digits: year, month, day).
NIGHT_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y_%m_%d")
DELIMITERS = {",": ("comma", "commas"), ";": ("semicolon", "semicolons"), "\t": ("tab", "tabs"), "|": ("pipe", "pipes")}
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with a byte-order mark",
    "cp1252": "Windows-1252 (cp1252)",
    "iso8859-1": "Latin-1 (ISO-8859-1)",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "ascii": "ASCII",
}


def date_format_words(date_format: str) -> str:
    """``%d/%m/%Y`` as ``DD/MM/YYYY``."""
    return re.sub("|".join(map(re.escape, DATE_PARTS)), lambda m: DATE_PARTS[m.group()], date_format)


def date_in_words(date_format: str) -> str:
    """``a date written DD/MM/YYYY, like 09/03/2014``."""
    return f"a date written {date_format_words(date_format)}, like {EXAMPLE_DATE.strftime(date_format)}"


def delimiter_name(delimiter: str, *, plural: bool = False) -> str:
    """``commas``, ``a tab``...; a character not listed is shown in quotes."""
    names = DELIMITERS.get(delimiter)
    if names is None:
        return f"'{delimiter}'"
    return names[1] if plural else names[0]


def encoding_name(encoding: str) -> str:
    """A codec's name as people know it: ``cp1252`` and ``windows-1252`` are both Windows-1252."""
    try:
        canonical = codecs.lookup(encoding).name
    except LookupError:
        return encoding
    return ENCODINGS.get(canonical, canonical)


def same_encoding(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return a.lower() == b.lower()


def file_name_template(contract: Contract) -> str | None:
    """The contract's file name with the night in words (``EDU_PUPILS_YYYYMMDD.csv``), or
    None when the pattern is more than a name around the night."""
    parts = _name_parts(contract)
    if parts is None:
        return None
    before, night_format, after = parts
    return before + date_format_words(night_format) + after


def example_file_name(contract: Contract, night: date = EXAMPLE_NIGHT) -> str | None:
    """A name that fits the contract, for ``night``: ``EDU_PUPILS_20261124.csv``."""
    parts = _name_parts(contract)
    if parts is None:
        return None
    before, night_format, after = parts
    return before + night.strftime(night_format) + after


def file_name_in_words(contract: Contract) -> str:
    """What a file's name must be, with an example: the raw pattern only when the contract's
    pattern is more than a name around the night."""
    parts = _name_parts(contract)
    if parts is None:
        return f"a name matching the pattern {contract.file.pattern}"
    before, night_format, after = parts
    return (
        f"{before}{date_format_words(night_format)}{after} ({date_format_words(night_format)}: the night the "
        f"extract was taken), for example {before}{EXAMPLE_NIGHT.strftime(night_format)}{after}, or the same "
        f"name ending {GZIP_SUFFIX} when compressed"
    )


def _name_parts(contract: Contract) -> tuple[str, str, str] | None:
    """(text before the night, the night's strftime format, text after it), checked: the
    example built from them must match the pattern and give back its night."""
    pattern = contract.file.pattern
    group = re.search(r"\(\?P<night>((?:\\.|[^()\\])*)\)", pattern)
    if group is None:
        return None
    head, tail = pattern[: group.start()].removeprefix("^"), pattern[group.end() :]
    if tail.endswith("$") and not tail.endswith("\\$"):
        tail = tail[:-1]
    before, after = _literal(head), _literal(tail)
    if before is None or after is None:
        return None
    for night_format in NIGHT_FORMATS:
        text = EXAMPLE_NIGHT.strftime(night_format)
        match = contract.match_name(before + text + after)
        if match is not None and match.group("night") == text:
            return before, night_format, after
    return None


def _literal(regex: str) -> str | None:
    """The text a regex of escaped characters and plain letters matches; None if it is more."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex) and not regex[i + 1].isalnum():
            out.append(regex[i + 1])
            i += 2
        elif char.isalnum() or char in "_- ":
            out.append(char)
            i += 1
        else:
            return None
    return "".join(out)
