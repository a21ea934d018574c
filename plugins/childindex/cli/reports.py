"""Reports: the night's ``summary`` and its HTML quality ``report``."""

from __future__ import annotations

from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, new_app, parse_date

app = new_app()


@app.command()
def summary(night: Annotated[str, typer.Option(help="Night to summarise (YYYY-MM-DD).")]) -> None:
    """Write and show a night's summary (what the night_summary DAG does)."""
    from childindex.reports.summary import night_summary

    console.print_json(data=night_summary(cli_settings(), parse_date(night, "--night")))


@app.command()
def report(
    night: Annotated[str, typer.Option(help="Night to report on (YYYY-MM-DD).")],
    days: Annotated[int, typer.Option(min=2, max=366, help="Nights of history in the trend plots.")] = 30,
) -> None:
    """Build (or rebuild) a night's HTML quality report and the index of all reports."""
    from childindex.reports.build import build_report

    # Counts from the index: whoever rebuilds a report needs no key.
    path = build_report(cli_settings(need_key=False), parse_date(night, "--night"), days)
    console.print(f"quality report: {path}")
