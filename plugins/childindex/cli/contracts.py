"""Extract contracts (one per extract type): ``contracts list``, ``show``, ``schema``, ``docs`` and ``suites``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import console, new_app, write_or_check

app = new_app("Extract contracts: one per extract type, shared by the organisations that send it.")


@app.command("list")
def contracts_list() -> None:
    """Every contract: its sector, version, file name pattern and title."""
    from rich.table import Table

    from childindex.contracts.contract import all_contracts

    table = Table("contract", "sector", "version", "file name", "title")
    for name, c in all_contracts().items():
        table.add_row(name, c.sector, str(c.version), c.file.pattern, c.title)
    console.print(table)


@app.command("show")
def contracts_show(name: Annotated[str, typer.Argument(help="The contract's name (contracts list).")]) -> None:
    """Print a contract as JSON."""
    from childindex.contracts.contract import load_contract

    console.print_json(load_contract(name).model_dump_json())


@app.command("schema")
def contracts_schema(name: Annotated[str, typer.Argument(help="The contract's name (contracts list).")]) -> None:
    """Print a contract as a Frictionless Table Schema (JSON), for validating files with other tools."""
    import sys

    from childindex.contracts.contract import load_contract
    from childindex.contracts.docs import render_schema

    # Straight to stdout: a schema is for machines, never wrapped or restyled.
    sys.stdout.write(render_schema(load_contract(name)))


@app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs/contracts"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the pages on disk are out of date.")] = False,
) -> None:
    """Generate the contract pages (with an example row from the generator) and their Table Schemas."""
    from childindex.contracts.docs import render_all
    from childindex.simulation.synthetic.examples import example_rows

    write_or_check(render_all(example_rows()), out, check, "childindex contracts docs")


@app.command("suites")
def contracts_suites(
    out: Annotated[Path, typer.Option(help="Folder for the GX suites.")] = Path("expectations"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the suites on disk are out of date.")] = False,
) -> None:
    """Generate the Great Expectations suites (expectations/<contract>.json) from the contracts."""
    from childindex.validation.gx.suites import render_all

    write_or_check(render_all(), out, check, "childindex contracts suites")
