"""Linkage hold notices: an organisation is told which of its records linkage held back.

One JSON document (schema ``childindex-linkage-held/1``, docs/receipts.md) and the same as
plain text per organisation per night, ``<outbox>/linkage-held-YYYY-MM-DD.json|.txt``,
beside its receipts (the receipts retention rule ages them by the night in their name).
They name files, counts and the fields the records share, never a value. Each is written
whole under a temporary name and renamed into place, never through a link
(:func:`childindex.safe_paths.write_inside`); a rerun of the night writes the same file
again, and removes the night's notice of an organisation that has nothing held any more.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from childindex.linkage.blocking import FIXED_RULES
from childindex.safe_paths import write_inside
from childindex.settings import Settings

HELD_SCHEMA = "childindex-linkage-held/1"
FIELDS = {rule.name: rule.fields for rule in FIXED_RULES}
NEXT_STEPS = (
    "Look for a placeholder in these records: a date of birth, postcode or name filled in when the real one "
    "was not known (a default date, the office's postcode, a name that only says the child is not named yet), "
    "or one NHS number or UPN on many records. Leave a field blank when it is not known, and send the corrected "
    "records in your next extract: a corrected record replaces the held one, and is linked that night.",
    "Until then the held records are tried again each night, and the rest of your records are linked as usual.",
)


def notice_path(outbox: Path, night: date) -> Path:
    return outbox / f"linkage-held-{night.isoformat()}.json"


def write_held_notices(
    settings: Settings,
    night: date,
    limit: int,
    files: dict[int, dict[str, Any]],
    by_file: list[tuple[str, int, int]],
    by_rule: list[tuple[str, int, str, int, int, int, int]],
    organisations: set[str],
) -> list[Path]:
    """Write the night's notice of each organisation with records held (``by_file`` and
    ``by_rule`` as :class:`childindex.linkage.bounds.Held` holds them; ``files`` by position:
    file_name, sha256, night); remove the night's notice of the other ``organisations``
    (those whose files were linked tonight). Returns the JSON files written.

    Raises:
        UnsafePath: an outbox, or a notice's name in it, is a link (nothing is written through one).
    """
    registry = settings.registry
    written = []
    held_orgs = {org for org, _ord, _n in by_file}
    for code in sorted(organisations - held_orgs):
        outbox = settings.outbox(code)
        if not outbox.is_symlink():  # a link in the outbox is removed itself, never followed
            path = notice_path(outbox, night)
            path.unlink(missing_ok=True)
            path.with_suffix(".txt").unlink(missing_ok=True)
    for code in sorted(held_orgs):
        org = registry.by_code.get(code)
        document = {
            "schema": HELD_SCHEMA,
            "organisation": code,
            "organisation_name": org.name if org else code,
            "night": night.isoformat(),
            "records_held": sum(n for o, _ord, n in by_file if o == code),
            "max_block_comparisons": limit,
            "files": [
                {**{k: files[ord_][k] for k in ("file_name", "sha256", "night")}, "records_held": n}
                for o, ord_, n in by_file
                if o == code
            ],
            "shared_fields": _shared(code, by_rule),
            "next_steps": list(NEXT_STEPS),
        }
        outbox = settings.outbox(code)
        path = notice_path(outbox, night)
        # The root is the folder holding the outbox, so the outbox itself must be a real folder.
        write_inside(outbox.parent, path, json.dumps(document, indent=2, sort_keys=True) + "\n")
        write_inside(outbox.parent, path.with_suffix(".txt"), _text(document))
        written.append(path)
    return written


def _shared(code: str, by_rule: list[tuple[str, int, str, int, int, int, int]]) -> list[dict[str, Any]]:
    """Per rule, over the organisation's files: its records held, the blocks they were in,
    and the largest of those (records, comparisons). Other senders' records count in a block."""
    out: dict[str, dict[str, Any]] = {}
    for org, _ord, rule, n, blocks, records, comparisons in by_rule:
        if org != code:
            continue
        entry = out.setdefault(
            rule,
            {"rule": rule, "fields": FIELDS.get(rule, rule), "records_held": 0, "blocks": 0,
             "largest_block_records": 0, "largest_block_comparisons": 0},
        )  # fmt: skip
        entry["records_held"] += n
        entry["blocks"] = max(entry["blocks"], blocks)
        entry["largest_block_records"] = max(entry["largest_block_records"], records)
        entry["largest_block_comparisons"] = max(entry["largest_block_comparisons"], comparisons)
    return list(out.values())


def _text(document: dict[str, Any]) -> str:
    lines = [
        f"childindex linkage notice for {document['organisation_name']} ({document['organisation']}), "
        f"night {document['night']}",
        f"Records held back from linkage: {document['records_held']:,}. Each shares the same values with so many "
        f"other records that comparing them all would take more than {document['max_block_comparisons']:,} "
        "comparisons in one group.",
        "Files:",
    ]
    lines += [
        f"  {f['file_name']} (night {f['night']}, SHA-256 {f['sha256'][:8]}...): {f['records_held']:,} record(s) held"
        for f in document["files"]
    ]
    lines.append("Shared fields:")
    lines += [
        f"  {s['fields']}: {s['records_held']:,} of your records, in {s['blocks']} group(s); the largest holds "
        f"{s['largest_block_records']:,} records ({s['largest_block_comparisons']:,} comparisons)"
        for s in document["shared_fields"]
    ]
    lines.append("What to do next:")
    lines += [f"  - {step}" for step in document["next_steps"]]
    return "\n".join(lines) + "\n"
