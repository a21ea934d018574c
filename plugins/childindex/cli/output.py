"""How every command prints: a human view (tables, lines) by default, ``--json`` for scripts.

Two promises, whatever the terminal or pipe:

- **A path is never split.** Rich wraps to the terminal's width, and to 80 columns when the
  output is piped, cutting a long path in two where a script or a copy-paste needs it whole.
  So lines are soft-wrapped (the terminal folds them on screen, no newline is inserted), a
  pipe or file gets no width limit at all, and paths are printed on lines of their own, never
  inside a table cell that could fold them.
- **``--json`` prints one JSON document on stdout and nothing else**, written by :mod:`json`
  (not rich, which would highlight and wrap it); warnings and progress go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

JSON_HELP = "Print the result as one JSON document (for scripts) instead of tables."
JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

# Wider than any line we print: a pipe or a file is never wrapped (tables are only as wide
# as their contents, so this does not pad them).
_UNLIMITED = 100_000


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        interactive = False
    return Console(stderr=stderr, soft_wrap=True, width=None if interactive else _UNLIMITED)


console = make_console()
err = make_console(stderr=True)


def show(renderable: RenderableType) -> None:
    """Print a table (or any renderable). Through a pipe, without the padding that fills each
    cell to its column's width: lines end where their text does."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    typer.echo("\n".join(text.rstrip() for text in captured.get().splitlines()))


def print_json(data: Any) -> None:
    """One JSON document on stdout: dates, paths and other values as their text."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def line(label: str, value: object) -> None:
    """``label: value`` on a line of its own, never wrapped and never read as markup
    (a path may hold brackets)."""
    console.print(f"{escape(label)}: {escape(str(value))}", soft_wrap=True, highlight=False)


def plain(text: str) -> None:
    """Text as it is: no markup, no highlighting, never wrapped (a command to copy, a path)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def paths(items: Mapping[str, Path | str | None]) -> None:
    """Each named path on a line of its own (absent ones left out)."""
    for label, value in items.items():
        if value is not None:
            line(label, value)


def table(*columns: str, title: str | None = None) -> Table:
    """The house table: a simple head rule, left-aligned, numbers right-aligned by the caller."""
    return Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)


def fields_table(rows: Iterable[tuple[str, object]], *, title: str | None = None) -> Table:
    """What and its value, without a heading row (one thing described)."""
    t = Table.grid(padding=(0, 3))
    t.title, t.title_justify = title, "left"
    t.add_column(style="bold")
    t.add_column()
    for name, value in rows:
        t.add_row(name, str(value))
    return t


def counts_table(rows: Iterable[tuple[str, object]], *, title: str | None = None, head: str = "") -> Table:
    """Two columns: what, and how many (thousands separated)."""
    t = table(head, "count", title=title)
    t.columns[1].justify = "right"
    for name, value in rows:
        t.add_row(name.replace("_", " "), _number(value))
    return t


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 10 else f"{value:,.1f}"
    return str(value)
