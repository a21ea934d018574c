"""Linkage: ``link``, ``train`` and the clerical review queue, ``review``."""

from __future__ import annotations

import getpass
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from childindex.cli.app import cli_settings, console, new_app, night_or_yesterday
from childindex.cli.output import JsonFlag, counts_table, line, print_json, show
from childindex.errors import UsageError

if TYPE_CHECKING:
    from childindex.linkage.review import Item, Listed

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
    list_only: Annotated[
        bool, typer.Option("--list", help="List open items (ids, scores, reasons and identifier agreement only).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON and never ask: the list (--list), the decision recorded (--decide), "
            "or else the item (--item, or the oldest open one).",
        ),
    ] = False,
) -> None:
    """Work the clerical review queue: pairs of records the linkage model could not decide.

    Shows why the pair waits (the reason in plain words, and what to check), whether its
    NHS numbers and UPNs agree, differ or are missing, and both records' minimal fields
    side by side; records "same child" or "different children". A decision wins over the
    model on every later night.
    """
    from childindex.linkage import review as rq

    url = cli_settings().index_url
    if list_only:
        count, listed = rq.open_count(url), rq.open_items(url)
        if as_json:
            items = [{**it._asdict(), "label": rq.reason_of(it.reason).label} for it in listed]
            print_json({"open": count, "items": items})
        else:
            _list(count, listed)
        return
    who = reviewer or _login_name()
    if as_json:  # one item, never a prompt
        it = rq.item(url, item_id)
        if it is None and item_id is not None:
            raise UsageError(f"no open review item {item_id}")
        if it is not None and decide:
            rq.decide(url, it.id, decide, who)
            print_json({"item": it.id, "decision": decide, "reviewer": who})
        else:
            print_json({"item": None if it is None else {**asdict(it), "label": rq.reason_of(it.reason).label}})
        return
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


def _probability(p: float | None) -> str:
    return "not scored" if p is None else f"{p:.4f}"


def _list(count: int, items: list[Listed]) -> None:
    """The open items: counts, codes and agreement words only. Cells wrap between words,
    never inside one: the reason column is as wide as its longest code, and on a narrow
    terminal (80 columns) the other headings and words go on two lines to make room."""
    from childindex.linkage.review import MISSING_BOTH, reason_of

    code_width = max((len(it.reason) for it in items), default=6)
    id_width = max((len(str(it.id)) for it in items), default=4)
    one_line = id_width + len("yyyy-mm-dd") + len("match probability") + 2 * len(MISSING_BOTH) + code_width + 2 * 5
    narrow = console.width < one_line
    table = Table(title=f"{count} open", box=None, pad_edge=False, title_justify="left")
    table.add_column("item", justify="right")
    table.add_column("night")
    table.add_column("match probability", justify="right", max_width=11 if narrow else None)
    table.add_column("NHS number", max_width=7 if narrow else None)
    table.add_column("UPN", max_width=7 if narrow else None)
    table.add_column("reason", min_width=code_width)
    for it in items:
        reason = reason_of(it.reason)
        table.add_row(
            str(it.id), it.night.isoformat(), _probability(it.match_probability), it.nhs_number, it.upn,
            f"{reason.code}: {reason.label}",
        )  # fmt: skip
    show(table)


def _show_item(it: Item) -> None:
    from childindex.linkage.review import reason_of

    reason = reason_of(it.reason)
    console.print(f"item {it.id} (night {it.night}): match probability {_probability(it.match_probability)}")
    console.print(f"reason: {reason.code}: {reason.label}")
    if reason.check:
        console.print(f"check: {reason.check}")
    console.print(f"NHS number: {it.nhs_number}; UPN: {it.upn}")
    if it.related:
        console.print(f"other open items on these records: {', '.join(map(str, it.related))}")
    table = Table("", "tonight's record", "record in the index")
    for field in it.new:
        a, b = it.new[field], it.other[field]
        style = "" if a == b else "yellow"
        # Text, not markup: a record's value is shown as it is, whatever brackets it holds.
        table.add_row(
            field.replace("_", " "),
            Text("" if a is None else str(a), style=style),
            Text("" if b is None else str(b), style=style),
        )
    show(table)


def _ask() -> str:
    choices = {"s": "match", "d": "non_match", "k": "skip", "q": "quit"}
    answer = typer.prompt("[s]ame child, [d]ifferent children, s[k]ip, [q]uit", default="k")
    return choices.get(answer.strip().lower()[:1], "skip")
