"""Which given names are the same name: nicknames and short forms, as a lookup table.

The lists are the ``nicknames`` package (a hand-curated dataset of English names and their
nicknames) plus ``nicknames_uk.csv``, a few British short forms it lacks. Nickname links
are many-to-many ("Al" is Alan, Albert or Alexander), so each name maps to the set of
formal names it can stand for, itself included; two names are nickname-related when those
sets meet. Names are upper case letters only, the form linkage compares.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

UK_SUPPLEMENT = Path(__file__).with_name("nicknames_uk.csv")


def _relations() -> list[tuple[str, str]]:
    import nicknames

    sources = [Path(nicknames.__file__).with_name("names.csv"), UK_SUPPLEMENT]
    pairs = []
    for source in sources:
        with source.open(newline="", encoding="utf-8") as fh:
            pairs += [(r["name1"], r["name2"]) for r in csv.DictReader(fh) if r["relationship"] == "has_nickname"]
    return pairs


def _key(name: str) -> str:
    return "".join(ch for ch in name.upper() if "A" <= ch <= "Z")


@cache
def formal_names_table() -> Any:
    """Arrow table (name, formal): each known name with the formal names it can stand for."""
    import pyarrow as pa

    formal: dict[str, set[str]] = {}
    for name1, name2 in _relations():
        formal_name, nickname = _key(name1), _key(name2)
        formal.setdefault(formal_name, {formal_name})
        formal.setdefault(nickname, {nickname}).add(formal_name)
    names = sorted(formal)
    return pa.table(
        {"name": names, "formal": [sorted(formal[n]) for n in names]},
        schema=pa.schema([("name", pa.string()), ("formal", pa.list_(pa.string()))]),
    )
