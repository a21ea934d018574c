"""Retention: ``retention`` (apply the policy, or print it)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from childindex.cli.app import cli_settings, console, new_app, parse_date
from childindex.cli.output import JsonFlag, paths, print_json, show, table

app = new_app()


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option(help="Count what would be deleted; delete nothing.")] = False,
    today: Annotated[str | None, typer.Option(help="Run as of this day (YYYY-MM-DD).")] = None,
    show_policy: Annotated[
        bool, typer.Option("--policy", help="Print the retention policy (a Markdown table) and exit.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Apply the retention periods and print the deletion certificate."""
    from datetime import date

    from childindex.retention.policy import policy, policy_markdown
    from childindex.retention.run import run_retention

    if show_policy:
        resolved = cli_settings(need_key=False)
        if as_json:
            print_json(
                [
                    {**rule.__dict__, "period_days": rule.period(resolved.retention), "deletes": list(rule.deletes)}
                    for rule in policy()
                ]
            )
        else:
            console.print(policy_markdown(resolved.retention), markup=False, highlight=False)
        return
    settings = cli_settings()
    cert = run_retention(settings, parse_date(today, "--today") if today else date.today(), dry_run=dry_run)
    if as_json:
        print_json(cert)
    else:
        print_certificate(cert)
        if not dry_run:
            paths({"certificate": settings.reports_dir / "retention" / f"certificate-{cert['run_for']}.json"})


def print_certificate(cert: dict[str, Any]) -> None:
    """A rule a row: its cutoff and what it deleted (or would), then the totals."""
    verb = "would delete" if cert["dry_run"] else "deleted"
    t = table("rule", "older than", "rows", "files", "", title=f"retention as of {cert['run_for']} ({verb})")
    for column in t.columns[2:4]:
        column.justify = "right"
    for rule in cert["rules"]:
        rows = sum(rule["rows_deleted"].values())
        t.add_row(rule["rule"], rule["cutoff"], f"{rows:,}", f"{rule['files_deleted']:,}", rule["skipped"] or "")
    show(t)
    console.print(f"{verb}: {cert['rows_deleted']:,} rows, {cert['files_deleted']:,} files")
