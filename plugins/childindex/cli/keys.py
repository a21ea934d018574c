"""Keys: ``init-key`` and ``rotate-key``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, err, new_app, parse_date
from childindex.cli.output import JsonFlag, counts_table, line, plain, print_json, show
from childindex.errors import UsageError

app = new_app()


@app.command("init-key")
def init_key(
    path: Annotated[Path, typer.Argument(help="File to create (mode 0600; never overwritten).")],
    as_json: JsonFlag = False,
) -> None:
    """Create a new random pseudonymisation key file."""
    from childindex.keyfiles import create_key_file

    try:
        create_key_file(path)
    except FileExistsError:
        raise UsageError(f"{path} exists; keys are never overwritten") from None
    if as_json:
        print_json({"key_file": str(path.absolute())})
        return
    line("key written to", path)
    console.print("now set it where childindex runs:")
    plain(f"  CHILDINDEX_PSEUDONYMISATION_KEY_FILE={path.absolute()}")


@app.command("rotate-key")
def rotate_key(
    new_key_file: Annotated[
        Path, typer.Option(help="The new key (from 'childindex init-key'; mode 0600).", show_default=False)
    ],
    extract: Annotated[
        list[str] | None,
        typer.Option(help="CODE=PATH: a full extract from the organisation with that code (repeat for each)."),
    ] = None,
    drop_unmapped: Annotated[
        bool, typer.Option(help="Delete records that no extract covers instead of stopping.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Read the extracts and count; change nothing.")] = False,
    today: Annotated[str | None, typer.Option(help="The day of the rotation (YYYY-MM-DD).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-key every pseudonym in the index to a new key, keeping every link (docs/keys.md).

    Reads the archived extracts and any --extract files with the current key
    (CHILDINDEX_PSEUDONYMISATION_KEY or _FILE) and the new one, replaces every key in one
    transaction and starts a new key epoch. Afterwards set the key setting to the new
    key: intake and linkage refuse the old one. Exits 1 when records no extract covers
    stop the rotation (nothing changed), 2 on a configuration error.
    """
    from datetime import date

    from childindex.keyfiles import read_key_file
    from childindex.keys.rotation import rotate_key as rotate

    resolved = cli_settings()
    new_key = read_key_file(new_key_file, "--new-key-file")
    with err.status("reading extracts with both keys"):
        result = rotate(
            resolved,
            new_key,
            parse_date(today, "--today") if today else date.today(),
            extracts=[_code_and_path(e) for e in extract or []],
            drop_unmapped=drop_unmapped,
            dry_run=dry_run,
        )
    if as_json:
        print_json(result.__dict__)
        return
    totals = [
        ("files read", result.files_read),
        ("files unusable", len(result.files_unusable)),
        ("source records", sum(result.records.values())),
        ("records no extract covered", sum(result.unmapped.values())),
        ("records deleted", result.records_deleted),
        ("rows re-keyed", sum(result.rows_rekeyed.values())),
        ("staging files deleted", result.staging_files_deleted),
        ("held files dropped", result.held_files_dropped),
    ]
    title = f"key rotation {result.old_key_id} -> {result.new_key_id}" + (" (dry run)" if dry_run else "")
    show(counts_table(totals, title=title))
    if result.unmapped:
        console.print("records no extract covered, by organisation: " + ", ".join(
            f"{code} {n:,}" for code, n in sorted(result.unmapped.items())
        ))  # fmt: skip
    if not dry_run:
        console.print(f"key epoch {result.epoch} ({result.new_key_id}) started. Now, everywhere childindex runs, set")
        plain(f"  CHILDINDEX_PSEUDONYMISATION_KEY_FILE={new_key_file.absolute()}")
        console.print("then destroy the old key.")


def _code_and_path(text: str) -> tuple[str, Path]:
    code, sep, path = text.partition("=")
    if not sep or not code or not path:
        raise UsageError("--extract takes CODE=PATH: the sending organisation's code, then the file")
    return code, Path(path)
