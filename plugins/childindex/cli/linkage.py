"""Linkage: ``link``, ``train`` and the clerical review queue, ``review``."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from childindex.cli.app import cli_settings, console, new_app, night_or_yesterday
from childindex.cli.output import JsonFlag, counts_table, line, print_json, show
from childindex.errors import UsageError

if TYPE_CHECKING:
    from childindex.linkage.review import Item

app = new_app()


@app.command()
def link(
    night: Annotated[str | None, typer.Option(help="Night being linked (YYYY-MM-DD).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Link every staged file into the index (what the linkage DAG does)."""
    from childindex.linkage.night import link_pending

    when = night_or_yesterday(night)
    result = link_pending(cli_settings(), when).as_dict()
    if as_json:
        print_json(result)
        return
    if not result["files"]:
        console.print(f"night {when}: no staged file waits to be linked")
        return
    version, reason = result.pop("model_version"), result.pop("model_reason")
    show(counts_table(result.items(), title=f"linkage, night {when}"))
    console.print(f"model: v{version:04d}, {reason}")
    if result["records_held"]:
        console.print(
            f"{result['records_held']} records held back in {result['blocks_over_limit']} oversized block(s): "
            "their senders were told (docs/linkage.md, bounded blocks)"
        )


@app.command()
def train(
    seed: Annotated[int, typer.Option(help="Seed for sampling random pairs.")] = 42,
    as_json: JsonFlag = False,
) -> None:
    """Train the linkage model on the index's records and save it as the next version
    (what the train_linkage_model DAG does). Nights use the newest version."""
    from childindex.linkage.training import train_model

    path, report = train_model(cli_settings(), seed=seed)
    if as_json:
        print_json({"model": str(path), **report})
        return
    flat = [(k, v) for k, v in report.items() if isinstance(v, int | float | bool)]
    show(counts_table(flat, title="linkage model trained"))
    line("model", path)


@app.command()
def review(
    item_id: Annotated[
        int | None, typer.Option("--item", help="Review this item (default: the oldest open one).")
    ] = None,
    decide: Annotated[str | None, typer.Option(help="Record this decision without asking: match or non_match.")] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Who decides, kept with the decision (default: the login name).")
    ] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List open items (ids and scores only).")] = False,
) -> None:
    """Work the clerical review queue: pairs of records the linkage model could not decide.

    Shows both records' minimal fields side by side and records "same child" or
    "different children". A decision wins over the model on every later night.
    """
    from childindex.linkage import review as rq

    url = cli_settings().index_url
    if list_only:
        table = Table("item", "night", "match probability", "reason", title=f"{rq.open_count(url)} open")
        for i, night, p, reason in rq.open_items(url):
            table.add_row(str(i), night.isoformat(), f"{p:.4f}", reason)
        console.print(table)
        return
    who = reviewer or _login_name()
    while (it := rq.item(url, item_id)) is not None:
        _show_item(it)
        answer = decide or _ask()
        if answer == "quit":
            return
        if answer != "skip":
            rq.decide(url, it.id, answer, who)
            console.print(f"item {it.id}: {answer} recorded; it applies from the next night's linkage")
        if decide or item_id is not None or answer == "skip":
            return
    if item_id is not None:
        raise UsageError(f"no open review item {item_id}")
    console.print("the review queue is empty")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without one): say so
        return "unknown"


def _show_item(it: Item) -> None:
    table = Table("", "tonight's record", "record in the index", title=(
        f"item {it.id} (night {it.night}): match probability {it.match_probability:.4f}, {it.reason}"
    ))  # fmt: skip
    for field in it.new:
        a, b = it.new[field], it.other[field]
        mark = "" if a == b else "[yellow]"
        table.add_row(
            field.replace("_", " "), f"{mark}{a if a is not None else ''}", f"{mark}{b if b is not None else ''}"
        )
    console.print(table)


def _ask() -> str:
    choices = {"s": "match", "d": "non_match", "k": "skip", "q": "quit"}
    answer = typer.prompt("[s]ame child, [d]ifferent children, s[k]ip, [q]uit", default="k")
    return choices.get(answer.strip().lower()[:1], "skip")
