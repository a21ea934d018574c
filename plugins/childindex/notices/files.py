"""Notice files: one JSON document (schema ``childindex-notices/1``, docs/notices.md) and
one CSV per organisation per night, in ``<outbox>/notices/``.

Written whole under a temporary name and renamed into place, so an organisation never
collects half a file. A second run on the same night merges into the night's files by
notice id (deterministic: night, organisation, child and kind), so a rerun adds nothing twice.
Nothing is read or written through a link (:mod:`childindex.safe_paths`): a link in the
outbox, its ``notices/`` folder or the outbox itself is refused with ``UnsafePath``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from childindex.notices.compose import NOTICE_SCHEMA
from childindex.safe_paths import read_inside, write_inside

NOTICES_FOLDER = "notices"
SCHEMA_FILE = Path(__file__).with_name("notices.schema.json")  # JSON Schema of NOTICE_SCHEMA
CSV_COLUMNS = (
    "night",
    "notice_id",
    "kind",
    "reference",
    "new",
    "sector",
    "organisation_code",
    "organisation_name",
    "area_code",
    "area_name",
    "service",
    "contact_route",
    "start_date",
    "end_date",
)
# A spreadsheet runs a cell that starts with one of these as a formula: a contact route or
# a name from another organisation's extract must never become one (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def notice_paths(outbox: Path, night: date) -> tuple[Path, Path]:
    folder = outbox / NOTICES_FOLDER
    stem = f"notices-{night.isoformat()}"
    return folder / f"{stem}.json", folder / f"{stem}.csv"


def write_notices(outbox: Path, organisation: dict[str, Any], night: date, notices: list[dict]) -> dict[str, Any]:
    """Merge ``notices`` into the organisation's files for the night; returns the merged
    document (the files say exactly this).

    Raises:
        UnsafePath: the outbox, its notices folder or a notice file is a link (the folder
            holding the outbox may be one).
    """
    json_path, csv_path = notice_paths(outbox, night)
    merged = {n["notice_id"]: n for n in _existing(outbox.parent, json_path)}
    merged.update({n["notice_id"]: n for n in notices})
    document = {
        "schema": NOTICE_SCHEMA,
        "night": night.isoformat(),
        "organisation": organisation,
        "notices": [merged[k] for k in sorted(merged)],
    }
    # Written whole under a temporary name and renamed into place.
    write_inside(outbox.parent, json_path, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    write_inside(outbox.parent, csv_path, _csv(document))
    return document


def _existing(root: Path, path: Path) -> list[dict]:
    try:
        # A link would merge another file (another organisation's notices) into this one.
        document = json.loads(read_inside(root, path).decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return []  # not ours or damaged: tonight's notices replace it whole
    if not isinstance(document, dict) or document.get("schema") != NOTICE_SCHEMA:
        return []
    return [n for n in document.get("notices", []) if isinstance(n, dict) and "notice_id" in n]


def _csv(document: dict[str, Any]) -> str:
    """One row per reference and involvement of every notice."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for notice in document["notices"]:
        for reference in notice["references"]:
            for inv in notice["involvements"]:
                row = {"night": document["night"], "notice_id": notice["notice_id"], "kind": notice["kind"],
                       "reference": reference, **inv}  # fmt: skip
                # The reference is the organisation's own id, exactly as it sent it.
                writer.writerow([reference if c == "reference" else _cell(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
