"""Retention: ``retention`` (apply the policy, or print it)."""

from __future__ import annotations

from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, new_app, parse_date

app = new_app()


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option(help="Count what would be deleted; delete nothing.")] = False,
    today: Annotated[str | None, typer.Option(help="Run as of this day (YYYY-MM-DD).")] = None,
    show_policy: Annotated[
        bool, typer.Option("--policy", help="Print the retention policy (a Markdown table) and exit.")
    ] = False,
) -> None:
    """Apply the retention periods and print the deletion certificate."""
    from datetime import date

    from childindex.retention.policy import policy_markdown
    from childindex.retention.run import run_retention

    if show_policy:
        resolved = cli_settings(need_key=False)
        console.print(policy_markdown(resolved.retention), markup=False, highlight=False, soft_wrap=True)
        return
    cert = run_retention(cli_settings(), parse_date(today, "--today") if today else date.today(), dry_run=dry_run)
    console.print_json(data=cert)
