"""HTML for a night's report and the index page: Jinja2 templates, autoescaped, with
no script, stylesheet or font from outside the file."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from jinja2 import Environment

from childindex.index.ledger import HELD
from childindex.reports.data import (
    DEFINITION,
    NHS_GO_LIVE,
    PANELS,
    SHOWN_ORGANISATIONS,
    NightData,
    organisation_rows,
)
from childindex.reports.plots import Figure


@cache
def _env() -> Environment:
    from jinja2 import PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("childindex.reports", "templates"), autoescape=select_autoescape())


def render_night(data: NightData, figures: list[Figure], report_folder: Path) -> str:
    # Hundreds of organisations: list the files that need a look (quarantined, duplicate,
    # with rejected rows or with records linkage held back); the rest are counted.
    files = []
    clean = [
        f for f in data.files if f["status"] in ("staged", "linked") and not f["rows_rejected"] and f["reason"] != HELD
    ]
    for f in (f for f in data.files if f not in clean):
        # The receipt's text form, for a person to read (the ledger points to its JSON twin).
        # A relative link, so the report and the outboxes can move together.
        receipt = f.get("receipt_path")
        text = Path(receipt).with_suffix(".txt") if receipt else None
        link = os.path.relpath(text, report_folder) if text and text.exists() else None
        quarantined = f["status"] == "quarantined"  # its rows are "not loaded", never "rejected"
        files.append(
            {
                **f,
                "receipt_link": link,
                "rows_accepted": 0 if quarantined else f["rows_accepted"],
                "rows_rejected": 0 if quarantined else f["rows_rejected"],
                "rows_not_loaded": f["rows_read"] if quarantined else 0,
            }
        )
    return (
        _env()
        .get_template("night.html.j2")
        .render(
            data=data,
            figures={f.key: f for f in figures},
            files=files,
            sectors=_sectors(data),
            shown=SHOWN_ORGANISATIONS,
            clean_files=len(clean),
            definition=DEFINITION,
            per_organisation=organisation_rows(data),
            panels=PANELS,
            nhs_go_live=NHS_GO_LIVE,
        )
    )


def render_index(nights: list[dict]) -> str:
    """``nights``: newest first, each {"night", "status", "ok", "counts"}."""
    return _env().get_template("index.html.j2").render(nights=nights, definition=DEFINITION)


def _sectors(data: NightData) -> list[dict]:
    from childindex.whitelist import SECTORS

    return [
        {
            "name": a,
            "organisations": int(data.value(f"{a}:organisations")),
            "silent": int(data.value(f"{a}:organisations_silent")),
            "waiting": int(data.value(f"{a}:organisations_waiting")),
            "stuck": int(data.value(f"{a}:organisations_stuck")),
            "files": int(data.value(f"{a}:files")),
            "rows_read": int(data.value(f"{a}:rows_read")),
            "rows_accepted": int(data.value(f"{a}:rows_accepted")),
            "rows_rejected": int(data.value(f"{a}:rows_rejected")),
            "rows_quarantined": int(data.value(f"{a}:rows_quarantined")),
            "rejection_rate": data.rejection_rate(a),
            "files_quarantined": int(data.value(f"{a}:files_quarantined")),
            "seconds": data.value(f"{a}:seconds"),
        }
        for a in SECTORS
    ]
