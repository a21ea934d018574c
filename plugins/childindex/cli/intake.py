"""Intake: ``intake``, ``reprocess`` and the organisations' pre-check, ``check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from childindex.cli.app import cli_settings, console, new_app, night_or_yesterday

app = new_app()

ORG_HELP = "The organisation's code in the registry (childindex organisations list)."
NIGHT_HELP = "Night (YYYY-MM-DD) for files whose name has none."
CHECK_EXIT = {"accepted": 0, "accepted_with_rejections": 1, "rejected": 2}


def _print_result(r: dict[str, Any]) -> None:
    console.print(
        f"{r['file_name']}: {r['outcome']} (read {r['rows_read']}, accepted "
        f"{r['rows_accepted']}, rejected {r['rows_rejected']}); receipt {r['receipt_path']}"
    )


@app.command()
def intake(
    organisation: Annotated[
        list[str] | None, typer.Option(help=ORG_HELP + " Repeat for several; every organisation when absent.")
    ] = None,
    night: Annotated[str | None, typer.Option(help=NIGHT_HELP)] = None,
) -> None:
    """Process organisations' drop folders without Airflow (what the intake DAG does)."""
    from childindex.intake.process import intake_organisation

    resolved = cli_settings()
    codes = organisation or [o.code for o in resolved.registry.organisations]
    for code in codes:
        resolved.registry.get(code)  # an unknown code fails before any file is touched
    resolved.ensure_dirs()
    runs = {code: intake_organisation(resolved, code, night_or_yesterday(night)) for code in codes}
    results = [r for run in runs.values() for r in run.results]
    for r in results:
        _print_result(r)
    for code, run in runs.items():  # files still arriving, or stuck: counted, never named
        if run.waiting.files:
            console.print(f"{code}: {run.waiting.describe()}", markup=False, highlight=False, soft_wrap=True)
    if any(r["outcome"] == "rejected" for r in results):
        raise typer.Exit(1)


@app.command()
def reprocess(
    organisation: Annotated[str, typer.Option(help=ORG_HELP)],
    sha: Annotated[str | None, typer.Option(help="SHA-256 (or a unique prefix) of the quarantined file.")] = None,
    corrected: Annotated[
        Path | None, typer.Option(help="A corrected file to admit in place of the quarantined one.", exists=True)
    ] = None,
    skip_row_count: Annotated[bool, typer.Option(help="Accept a genuine change in the file's size.")] = False,
    night: Annotated[str | None, typer.Option(help=NIGHT_HELP)] = None,
) -> None:
    """Re-admit a quarantined file, or a corrected file in its place, and process it now."""
    from childindex.intake.reprocess import reprocess as run_reprocess

    resolved = cli_settings()
    resolved.registry.get(organisation)
    resolved.ensure_dirs()
    r = run_reprocess(
        resolved,
        organisation,
        night_or_yesterday(night),
        sha_prefix=sha,
        corrected=corrected,
        skip_row_count=skip_row_count,
    )
    _print_result(r)
    if r["outcome"] == "rejected":
        raise typer.Exit(1)


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="The extract to check (it is only read).", exists=True, dir_okay=False)],
    organisation: Annotated[str | None, typer.Option(help=ORG_HELP)] = None,
    contract: Annotated[
        str | None,
        typer.Option(help="Instead of --organisation: the contract, for an organisation not yet registered."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON instead of text.")] = False,
) -> None:
    """Check an extract before sending it: the same rules as intake, offline, no key needed.

    Exit 0: every row would be accepted as sent. 1: some rows would be rejected, or kept
    without a malformed identity value (set aside: fix it at source). 2: the whole file
    would be rejected.
    """
    import tempfile
    from datetime import date

    from childindex.errors import UsageError
    from childindex.intake.check import check_file, unregistered

    if (organisation is None) == (contract is None):
        raise UsageError("name the sender: --organisation CODE, or --contract NAME before it is registered")
    with tempfile.TemporaryDirectory(prefix="childindex-check-") as scratch:
        resolved = cli_settings(need_key=False, data_dir=Path(scratch))
        sender = resolved.registry.get(organisation) if organisation else unregistered(contract or "")
        receipt = check_file(resolved, sender, path, date.today())
    if as_json:
        console.print_json(data=receipt.to_json())
    else:
        console.print(receipt.to_text(), markup=False, highlight=False)
    code = CHECK_EXIT[receipt.outcome]
    raise typer.Exit(1 if code == 0 and receipt.values_set_aside_total else code)
