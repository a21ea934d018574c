"""The root ``childindex`` command: its consoles, shared helpers, and the one place where an
error becomes an exit code and one readable line.

Exit codes: 0 success; 1 the work ran and found a problem (a failed DAG, a rejected file,
a database that is unavailable); 2 a usage or configuration error (the message says what
to set or pass).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from childindex.cli.output import console, err  # noqa: F401 - console: the command modules import it here
from childindex.errors import (
    ChildindexError,
    ContractError,
    KeyMismatch,
    RegistryError,
    SettingsError,
    TransientError,
    UsageError,
    is_disk_full,
)
from childindex.settings import Settings, load_settings, unknown_variables

DEFAULT_FIRST_NIGHT = date(2026, 11, 24)

# Error class -> exit code, most specific first: the only mapping of its kind.
EXIT_CODES: tuple[tuple[type[ChildindexError], int], ...] = (
    (SettingsError, 2),  # configuration: the message names the setting
    (UsageError, 2),  # the command named something that is not there
    (ContractError, 2),  # an unknown contract, a broken contract
    (RegistryError, 2),  # a broken registry, an unknown organisation
    (KeyMismatch, 2),  # the configured key is not the index's
    (TransientError, 1),  # the index database is unavailable: try again
    (ChildindexError, 1),  # the work ran and found a problem
)


def exit_code(exc: ChildindexError) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


class _Group(TyperGroup):
    """Every command runs inside this: a childindex error is one line on stderr and its code."""

    def invoke(self, ctx: Any) -> Any:  # click.Context, of the click copy Typer ships
        try:
            return super().invoke(ctx)
        except ChildindexError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(exit_code(exc)) from None
        except Exception as exc:
            # One line, not a driver's traceback: a full disk or an unreachable index needs an
            # operator, not a developer.
            if is_disk_full(exc):
                err.print(
                    f"[red]error:[/red] a disk is full ({type(exc).__name__}): free space and run the command again"
                )
                raise typer.Exit(1) from None
            why = _connection_failure(exc)
            if why is None:
                raise
            err.print(f"[red]error:[/red] the index database: {escape(why)}; check CHILDINDEX_INDEX_URL")
            raise typer.Exit(1) from None


def _connection_failure(exc: Exception) -> str | None:
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    from childindex.index.db import connection_failure

    try:
        return connection_failure(exc, load_settings().index_url)
    except ChildindexError:
        return None


def new_app(help_text: str | None = None) -> typer.Typer:
    """A Typer app of childindex's kind (the command modules each make one; app merges them)."""
    return typer.Typer(
        cls=_Group, help=help_text, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def cli_settings(need_key: bool = True, **overrides: Any) -> Settings:
    """The resolved settings; with ``need_key``, fail early (with the setting's name) when the
    pseudonymisation key is missing or weak."""
    resolved = load_settings(**overrides)
    for line in unknown_variables():  # on the terminal too: logging may not reach it
        err.print(f"[yellow]warning:[/yellow] {escape(line)}")
    if need_key:
        resolved.key  # noqa: B018 - resolving it raises SettingsError naming what to set
    return resolved


def night_or_yesterday(night: str | None) -> date:
    """A night given as YYYY-MM-DD, or last night (the one a run today serves)."""
    return parse_date(night, "--night") if night else date.today() - timedelta(days=1)


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} takes a date as YYYY-MM-DD") from None


def write_or_check(pages: dict[str, str], out: Path, check: bool, command: str, as_json: bool = False) -> None:
    """Write generated files, or (check) exit 1 naming those that differ from disk."""
    from childindex.cli.output import line, print_json

    stale = []
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        path = out / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if as_json:
        print_json({"folder": str(out), "files": sorted(pages), "checked": check, "out_of_date": stale})
    if stale:
        if not as_json:
            err.print(f"out of date: {', '.join(stale)}; run '{command}'")
        raise typer.Exit(1)
    if not as_json:
        line(f"{len(pages)} files {'checked' if check else 'written'} in", out)
