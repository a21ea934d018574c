"""Agencies' extract contracts: ``contracts show``, ``contracts docs`` and ``contracts suites``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import console, new_app, write_or_check

app = new_app("Agencies' extract contracts.")


@app.command("show")
def contracts_show(agency: Annotated[str, typer.Argument(help="education, health or social_care.")]) -> None:
    """Print an agency's contract as JSON."""
    from childindex.contracts.contract import load_contract

    console.print_json(load_contract(agency).model_dump_json())


@app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs/contracts"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the pages on disk are out of date.")] = False,
) -> None:
    """Generate the human-readable contract pages from the YAML contracts."""
    from childindex.contracts.docs import render_all

    write_or_check(render_all(), out, check, "childindex contracts docs")


@app.command("suites")
def contracts_suites(
    out: Annotated[Path, typer.Option(help="Folder for the GX suites.")] = Path("expectations"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the suites on disk are out of date.")] = False,
) -> None:
    """Generate the Great Expectations suites (expectations/<agency>.json) from the contracts."""
    from childindex.validation.gx.suites import render_all

    write_or_check(render_all(), out, check, "childindex contracts suites")
