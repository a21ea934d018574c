"""The index database: ``db upgrade`` and ``db apply-sql``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from childindex.cli.app import cli_settings, console, new_app
from childindex.cli.output import JsonFlag, plain, print_json
from childindex.errors import TerminalError, UsageError

app = new_app("The index database.")


@app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Create or migrate the index schema to the newest version; say which migrations ran.

    Run it as the schema's owner. It needs only CHILDINDEX_INDEX_URL: no key, no
    organisations registry, no data folder (the owner may run it from an operator's machine).
    """
    from childindex.index.db import migrate

    upgrade = migrate(cli_settings(need_key=False).index_url)
    if as_json:
        print_json(
            {
                "before": upgrade.before,
                "head": upgrade.head,
                "ran": [{"revision": r, "title": t} for r, t in upgrade.ran],
            }
        )
        return
    for line in upgrade.lines():
        plain(line)  # a revision per line, however narrow


@app.command("apply-sql")
def db_apply_sql(
    path: Annotated[Path, typer.Argument(help="The script, e.g. sql/02_grants.sql.", exists=True, dir_okay=False)],
    as_json: JsonFlag = False,
) -> None:
    """Run an SQL script (roles, grants) on the PostgreSQL index, as the role in CHILDINDEX_INDEX_URL."""
    from childindex.index.db import apply_sql_file

    url = cli_settings(need_key=False).index_url
    try:
        apply_sql_file(url, path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the database's own message names the statement
        raise TerminalError(f"{path.name}: {type(exc).__name__}: {exc}", stage="index") from None
    if as_json:
        print_json({"script": str(path), "applied": True})
    else:
        console.print(f"{path.name} applied")
