"""Extract contracts (one per extract type): ``contracts list``, ``show``, ``schema``, ``docs`` and ``suites``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import console, new_app, write_or_check
from childindex.cli.output import JsonFlag, fields_table, print_json, show, table

app = new_app("Extract contracts: one per extract type, shared by the organisations that send it.")


@app.command("list")
def contracts_list(as_json: JsonFlag = False) -> None:
    """Every contract: its sector, version, file name (with the night in words) and title."""
    from childindex.contracts.contract import all_contracts
    from childindex.contracts.describe import file_name_template

    contracts = all_contracts()
    if as_json:
        print_json(
            [
                {
                    "contract": name,
                    "sector": c.sector,
                    "version": c.version,
                    "file_name": file_name_template(c),
                    "file_pattern": c.file.pattern,
                    "title": c.title,
                }
                for name, c in contracts.items()
            ]
        )
        return
    t = table("contract", "sector", "version", "file name", "title")
    for name, c in contracts.items():
        t.add_row(name, c.sector, str(c.version), file_name_template(c) or c.file.pattern, c.title)
    show(t)


@app.command("show")
def contracts_show(
    name: Annotated[str, typer.Argument(help="The contract's name (contracts list).")],
    as_json: JsonFlag = False,
) -> None:
    """One contract: the file it describes and its columns (--json: the whole contract)."""
    import json

    from childindex.contracts.contract import load_contract
    from childindex.contracts.describe import date_in_words, delimiter_name, encoding_name, file_name_in_words

    c = load_contract(name)
    if as_json:
        print_json(json.loads(c.model_dump_json()))
        return
    about = [
        ("sector", c.sector),
        ("version", c.version),
        ("file name", file_name_in_words(c)),
        ("format", f"{delimiter_name(c.file.delimiter, plural=True)}, {encoding_name(c.file.encoding)}"),
        ("dates", date_in_words(c.date_format)),
    ]
    show(fields_table(about, title=f"{c.contract}: {c.title}"))
    t = table("column", "field", "required", "type", "meaning")
    for col in c.columns:
        kind = col.format or col.type
        t.add_row(col.name, col.field, "yes" if col.required else "", kind, col.description)
    show(t)
    console.print(f"the contract page: docs/contracts/{c.contract}.md (childindex contracts docs)")


@app.command("schema")
def contracts_schema(
    name: Annotated[str, typer.Argument(help="The contract's name (contracts list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Accepted for symmetry: the schema is JSON already.")] = False,
) -> None:
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
    as_json: JsonFlag = False,
) -> None:
    """Generate the contract pages (with an example row from the generator) and their Table Schemas."""
    from childindex.contracts.docs import render_all
    from childindex.simulation.synthetic.examples import example_rows

    write_or_check(render_all(example_rows()), out, check, "childindex contracts docs", as_json)


@app.command("suites")
def contracts_suites(
    out: Annotated[Path, typer.Option(help="Folder for the GX suites.")] = Path("expectations"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the suites on disk are out of date.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate the Great Expectations suites (expectations/<contract>.json) from the contracts."""
    from childindex.validation.gx.suites import render_all

    write_or_check(render_all(), out, check, "childindex contracts suites", as_json)
