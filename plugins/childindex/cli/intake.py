"""Intake: ``intake``, ``reprocess`` and the organisations' pre-check, ``check``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from childindex.cli.app import cli_settings, console, new_app, night_or_yesterday
from childindex.cli.output import JsonFlag, line, plain, print_json, show, table

app = new_app()

ORG_HELP = "The organisation's code in the registry (childindex organisations list)."
NIGHT_HELP = "Night (YYYY-MM-DD) for files whose name has none."
CHECK_EXIT = {"accepted": 0, "accepted_with_rejections": 1, "rejected": 2}


def _print_results(results: list[dict[str, Any]]) -> None:
    """A file a row, then each receipt's path on a line of its own (never folded)."""
    t = table("organisation", "file", "outcome", "read", "accepted", "rejected")
    for column in t.columns[3:]:
        column.justify = "right"
    for r in results:
        t.add_row(r["organisation"], r["file_name"], r["outcome"], *(f"{r[k]:,}" for k in _COUNTS))
    show(t)
    for r in results:
        line(f"receipt for {r['file_name']}", r["receipt_path"])


_COUNTS = ("rows_read", "rows_accepted", "rows_rejected")


@app.command()
def intake(
    organisation: Annotated[
        list[str] | None, typer.Option(help=ORG_HELP + " Repeat for several; every organisation when absent.")
    ] = None,
    night: Annotated[str | None, typer.Option(help=NIGHT_HELP)] = None,
    as_json: JsonFlag = False,
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
    waiting = {code: run.waiting for code, run in runs.items() if run.waiting.files}
    if as_json:
        print_json({"files": results, "waiting": {code: asdict(w) for code, w in waiting.items()}})
    else:
        if results:
            _print_results(results)
        else:  # say so: a silent exit 0 looks like an intake that never looked
            console.print(f"no complete file in the drop folders of {len(codes)} organisation(s)")
        for code, w in waiting.items():  # files still arriving, or stuck: counted, never named
            plain(f"{code}: {w.describe()}")
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
    as_json: JsonFlag = False,
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
    if as_json:
        print_json(r)
    else:
        _print_results([r])
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
    as_json: JsonFlag = False,
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
        print_json(receipt.to_json())
    else:
        console.print(receipt.to_text(), markup=False, highlight=False)
    code = CHECK_EXIT[receipt.outcome]
    raise typer.Exit(1 if code == 0 and receipt.values_set_aside_total else code)
