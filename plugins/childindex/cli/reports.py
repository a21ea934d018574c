"""Reports: the night's ``summary`` and its HTML quality ``report``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from childindex.cli.app import cli_settings, console, new_app, parse_date
from childindex.cli.output import JsonFlag, paths, plain, print_json, show, table
from childindex.settings import Settings

app = new_app()


@app.command()
def summary(
    night: Annotated[str, typer.Option(help="Night to summarise (YYYY-MM-DD).")],
    as_json: JsonFlag = False,
) -> None:
    """Write and show a night's summary (what the night_summary DAG does)."""
    from childindex.reports.summary import night_summary

    settings = cli_settings()
    data = night_summary(settings, parse_date(night, "--night"))
    if as_json:
        print_json(data)
    else:
        print_night(data, settings)


@app.command()
def report(
    night: Annotated[str, typer.Option(help="Night to report on (YYYY-MM-DD).")],
    days: Annotated[int, typer.Option(min=2, max=366, help="Nights of history in the trend plots.")] = 30,
    as_json: JsonFlag = False,
) -> None:
    """Build (or rebuild) a night's HTML quality report and the index of all reports."""
    from childindex.reports.build import build_report

    # Counts from the index: whoever rebuilds a report needs no key.
    path = build_report(cli_settings(need_key=False), parse_date(night, "--night"), days)
    if as_json:
        print_json({"night": night, "report": str(path)})
    else:
        paths({"quality report": path})


def print_night(s: dict[str, Any], settings: Settings, seconds: float | None = None) -> None:
    """A night summary for people: a table by sector, then a line per topic, then where
    everything is (each path on a line of its own). Shared by ``summary`` and ``demo``."""
    from childindex.reports.build import report_path

    # Narrow enough for an 80-column terminal or log: the rest is in the lines below.
    t = table("sector", "orgs", "files", "rows read", "accepted", "rejected", "quarantined",
              title=f"childindex night {s['night']}")  # fmt: skip
    for column in t.columns[1:]:
        column.justify = "right"
    counts = ("files", "rows_read", "rows_accepted", "rows_rejected", "files_quarantined")
    for sector, e in s["sectors"].items():
        t.add_row(sector, str(e["organisations"]), *(str(e[k]) for k in counts))
    show(t)
    areas = len({a for o in settings.registry.organisations for a in o.areas})
    duplicates = sum(e["files_duplicate"] for e in s["sectors"].values())
    console.print(
        f"organisations: {s['organisations_sending']} of {s['organisations_registered']} sent files, "
        f"in {areas} authority areas" + (f"; {duplicates} duplicate file(s), loaded before" if duplicates else "")
    )
    # Stuck first (someone must act), then still arriving: "sent nothing" is told apart.
    for code in dict.fromkeys(s.get("organisations_stuck", []) + s.get("organisations_waiting", [])):
        plain(f"  {code}: {s['organisations'][code]['delivery']}")
    if s.get("organisations_silent"):
        console.print(f"sent no file: {', '.join(s['organisations_silent'])}", highlight=False)
    console.print(
        f"children in the index: {s['children']}  (source records {s['source_records']}, "
        f"records linked to another record {s['records_linked']}, "
        f"children known to several organisations {s['children_in_several_organisations']}, "
        f"in several areas {s['children_in_several_areas']})"
    )
    lk = s.get("linkage") or {}
    if lk:
        # The model that scored this night's records (its metrics say), not merely the newest.
        used = _model_name(lk["model_version"]) if "model_version" in lk else None
        newer = f"; newest now {lk['model_now']}, for later nights" if used and used != lk["model_now"] else ""
        console.print(
            f"linkage: model {used or 'none (nothing was linked this night)'}{newer}, "
            f"{lk.get('pairs_scored', 0)} pairs scored, {lk.get('links', 0)} links, "
            f"review queue {lk['review_queue_open']} open (childindex review)"
        )
    acc = s.get("accuracy")
    if acc:
        console.print(
            f"against ground truth: precision {acc['precision']:.4f}, recall {acc['recall']:.4f}, "
            f"F1 {acc['f1']:.4f} (B-cubed F1 {acc['bcubed_f1']:.4f})"
        )
        console.print(
            f"cross-authority links: recall {acc['cross_authority_recall']:.4f} on "
            f"{acc['cross_authority_pairs_true']:.0f} true pairs of records in different areas "
            f"({acc['cross_authority_children']:.0f} children in several areas)"
        )
    _print_notices(s)
    if seconds is not None:
        console.print(f"time taken: {seconds:.1f} s")
    quality = report_path(settings, date.fromisoformat(s["night"]))
    paths(
        {
            "index": s["index_url"],
            "receipts": settings.outbox_root,
            "night summary": settings.reports_dir,
            "quality report": quality if quality.exists() else None,
        }
    )


def _model_name(version: float) -> str:
    """The file name of the model of this version (0: the bundled one)."""
    from pathlib import Path

    from childindex.linkage.model import model_path

    return model_path(Path(), int(version)).name


def _print_notices(s: dict[str, Any]) -> None:
    """How many notices went to whom, and how many were true (counts only)."""
    n = s.get("notices") or {}
    if not n:
        return
    by_sector = ", ".join(f"{sector} {e.get('notices_sent', 0)}" for sector, e in s["sectors"].items())
    busiest = sorted(((e.get("notices_sent", 0), code) for code, e in s["organisations"].items()), reverse=True)
    top = ", ".join(f"{code} {k}" for k, code in busiest[:3] if k)
    console.print(
        f"notices: {n.get('notices_sent', 0)} to {n.get('notices_organisations', 0)} organisations "
        f"(by sector: {by_sector}; most: {top or 'none'}), "
        f"{n.get('retractions_sent', 0)} retractions; files in each outbox's notices/ folder"
    )
    if "due" in n:
        console.print(
            f"notices against ground truth: {n['true']} true and {n['false']} false items told "
            f"(precision {n.get('precision', 1.0):.4f}); {n['missed']} of {n['due']} true new co-involvements "
            f"missed (recall {n.get('recall', 1.0):.4f}); across authority areas precision "
            f"{n.get('precision_cross_area', 1.0):.4f}, recall {n.get('recall_cross_area', 1.0):.4f}"
        )
