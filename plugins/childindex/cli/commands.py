"""The ``childindex`` command.

Exit codes: 0 success; 1 the work ran and found a problem (a failed DAG, a rejected
file); 2 a usage or configuration error (the message says what to set).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The index database.", no_args_is_help=True)
contracts_app = typer.Typer(help="Agencies' extract contracts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(contracts_app, name="contracts")
console = Console()
err = Console(stderr=True)

DEFAULT_FIRST_NIGHT = date(2026, 11, 24)


@contextmanager
def _key_checked():  # noqa: ANN202
    """A key that is not the index's is a configuration error: one line, exit 2."""
    from childindex.errors import KeyMismatch

    try:
        yield
    except KeyMismatch as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _settings(need_key: bool = True):  # noqa: ANN202
    from childindex.errors import SettingsError
    from childindex.settings import load_settings

    try:
        settings = load_settings()
        if need_key:
            settings.key  # noqa: B018 - fail early, with the setting's name
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    return settings


def _check_agency(agency: str) -> None:
    from childindex.contracts.contract import AGENCIES

    if agency not in AGENCIES:
        err.print(f"[red]error:[/red] unknown agency {agency!r}; choose one of {', '.join(AGENCIES)}")
        raise typer.Exit(2)


def _print_result(r: dict) -> None:
    console.print(
        f"{r['file_name']}: {r['outcome']} (read {r['rows_read']}, accepted "
        f"{r['rows_accepted']}, rejected {r['rows_rejected']}); receipt {r['receipt_path']}"
    )


def _today() -> date:
    return date.today()


@app.command()
def generate(
    children: Annotated[int, typer.Option(min=1, help="Children in the synthetic population.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 42,
    night_number: Annotated[
        int, typer.Option(min=0, help="0 writes the initial load; k >= 1 the delta of night k.")
    ] = 0,
    first_night: Annotated[
        str, typer.Option(help="Night of the initial load (YYYY-MM-DD).")
    ] = DEFAULT_FIRST_NIGHT.isoformat(),
    truth_dir: Annotated[
        Path | None, typer.Option(help="Where ground truth goes (default DATA_DIR/ground_truth; never a drop folder).")
    ] = None,
) -> None:
    """Write one night of synthetic agency extracts into the drop folders."""
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    settings = load_settings()
    truth = truth_dir or settings.ground_truth_dir or settings.data_dir / "ground_truth"
    start = time.perf_counter()
    result = generate_night(
        settings.drop_root,
        truth,
        children=children,
        seed=seed,
        first_night=date.fromisoformat(first_night),
        night_number=night_number,
    )
    table = Table("agency", "file", "rows", title=f"night {result.night} ({result.children} children)")
    for agency, path in result.files.items():
        table.add_row(agency, str(path), str(result.rows[agency]))
    console.print(table)
    console.print(f"ground truth: {result.truth_path}  ({time.perf_counter() - start:.1f} s)")


@app.command("init-key")
def init_key(path: Annotated[Path, typer.Argument(help="File to create (mode 0600; never overwritten).")]) -> None:
    """Create a new random pseudonymisation key file."""
    from childindex.settings import create_key_file

    try:
        create_key_file(path)
    except FileExistsError:
        err.print(f"[red]error:[/red] {path} exists; keys are never overwritten")
        raise typer.Exit(2) from None
    console.print(f"key written to {path}; set CHILDINDEX_PSEUDONYMISATION_KEY_FILE={path}")


@app.command("rotate-key")
def rotate_key(
    new_key_file: Annotated[
        Path, typer.Option(help="The new key (from 'childindex init-key'; mode 0600).", show_default=False)
    ],
    extract: Annotated[
        list[Path] | None,
        typer.Option(help="A full extract from an agency, named as its contract says (repeat for each)."),
    ] = None,
    drop_unmapped: Annotated[
        bool, typer.Option(help="Delete records that no extract covers instead of stopping.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Read the extracts and count; change nothing.")] = False,
    today: Annotated[str | None, typer.Option(help="The day of the rotation (YYYY-MM-DD).")] = None,
) -> None:
    """Re-key every pseudonym in the index to a new key, keeping every link (docs/keys.md).

    Reads the archived extracts and any --extract files with the current key
    (CHILDINDEX_PSEUDONYMISATION_KEY or _FILE) and the new one, replaces every key in one
    transaction and starts a new key epoch. Afterwards set the key setting to the new
    key: intake and linkage refuse the old one. Exits 1 when records no extract covers
    stop the rotation (nothing changed), 2 on a configuration error.
    """
    from childindex.errors import KeyMismatch, RotationRefused, SettingsError
    from childindex.keys.rotation import rotate_key as rotate
    from childindex.settings import read_key_file

    settings = _settings()
    try:
        new_key = read_key_file(new_key_file, "--new-key-file")
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        with console.status("reading extracts with both keys"):
            result = rotate(
                settings,
                new_key,
                date.fromisoformat(today) if today else _today(),
                extracts=list(extract or []),
                drop_unmapped=drop_unmapped,
                dry_run=dry_run,
            )
    except (RotationRefused, KeyMismatch) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1 if isinstance(exc, RotationRefused) else 2) from None
    console.print_json(data=result.__dict__)
    if not dry_run:
        console.print(
            f"key epoch {result.epoch} ({result.new_key_id}) started. Now set "
            f"CHILDINDEX_PSEUDONYMISATION_KEY_FILE={new_key_file.absolute()} everywhere childindex runs, "
            "then destroy the old key."
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the index schema to the newest version."""
    from childindex.index.db import migrate

    settings = _settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    console.print("index schema is up to date")


@app.command()
def intake(
    agency: Annotated[str, typer.Option(help="education, health or social_care.")],
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD) for files whose name has none.")] = None,
) -> None:
    """Process an agency's drop folder without Airflow (what its intake DAG does)."""
    from childindex.intake.process import run_intake

    _check_agency(agency)
    settings = _settings()
    settings.ensure_dirs()
    with _key_checked():
        results = run_intake(settings, agency, date.fromisoformat(night) if night else _today() - timedelta(days=1))
    for r in results:
        _print_result(r)
    if any(r["outcome"] == "rejected" for r in results):
        raise typer.Exit(1)


@app.command()
def reprocess(
    agency: Annotated[str, typer.Option(help="education, health or social_care.")],
    sha: Annotated[str | None, typer.Option(help="SHA-256 (or a unique prefix) of the quarantined file.")] = None,
    corrected: Annotated[
        Path | None, typer.Option(help="A corrected file to admit in place of the quarantined one.", exists=True)
    ] = None,
    skip_row_count: Annotated[bool, typer.Option(help="Accept a genuine change in the file's size.")] = False,
    night: Annotated[str | None, typer.Option(help="Night (YYYY-MM-DD) for files whose name has none.")] = None,
) -> None:
    """Re-admit a quarantined file, or a corrected file in its place, and process it now."""
    from childindex.intake.process import reprocess as run_reprocess

    _check_agency(agency)
    settings = _settings()
    settings.ensure_dirs()
    try:
        r = run_reprocess(
            settings,
            agency,
            date.fromisoformat(night) if night else _today() - timedelta(days=1),
            sha_prefix=sha,
            corrected=corrected,
            skip_row_count=skip_row_count,
        )
    except (LookupError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_result(r)
    if r["outcome"] == "rejected":
        raise typer.Exit(1)


CHECK_EXIT = {"accepted": 0, "accepted_with_rejections": 1, "rejected": 2}


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="The extract to check (it is only read).", exists=True, dir_okay=False)],
    agency: Annotated[str, typer.Option(help="education, health or social_care.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON instead of text.")] = False,
) -> None:
    """Check an extract before sending it: the same rules as intake, offline, no key needed.

    Exit 0: every row would be accepted. 1: some rows would be rejected. 2: the whole file
    would be rejected.
    """
    import tempfile

    from childindex.contracts.contract import load_contract
    from childindex.errors import SettingsError
    from childindex.intake.process import check_file
    from childindex.settings import load_settings

    _check_agency(agency)
    with tempfile.TemporaryDirectory(prefix="childindex-check-") as scratch:
        try:
            settings = load_settings(data_dir=Path(scratch))
        except SettingsError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        receipt = check_file(settings, load_contract(agency), path, _today())
    if as_json:
        console.print_json(data=receipt.to_json())
    else:
        console.print(receipt.to_text(), markup=False, highlight=False)
    raise typer.Exit(CHECK_EXIT[receipt.outcome])


@app.command()
def link(night: Annotated[str | None, typer.Option(help="Night being linked (YYYY-MM-DD).")] = None) -> None:
    """Link every staged file into the index (what the linkage DAG does)."""
    from childindex.linkage.night import link_pending

    with _key_checked():
        result = link_pending(_settings(), date.fromisoformat(night) if night else _today() - timedelta(days=1))
    console.print_json(data=result.as_dict())


@app.command()
def train(seed: Annotated[int, typer.Option(help="Seed for sampling random pairs.")] = 42) -> None:
    """Train the linkage model on the index's records and save it as the next version
    (what the train_linkage_model DAG does). Nights use the newest version."""
    from childindex.errors import NotEnoughRecords
    from childindex.linkage.training import train_model

    try:
        path, report = train_model(_settings(), seed=seed)
    except NotEnoughRecords as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print_json(data={"model": str(path), **report})


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

    settings = _settings()
    url = settings.index_url
    if list_only:
        table = Table("item", "night", "match probability", "reason", title=f"{rq.open_count(url)} open")
        for i, night, p, reason in rq.open_items(url):
            table.add_row(str(i), night.isoformat(), f"{p:.4f}", reason)
        console.print(table)
        return
    who = reviewer or os.environ.get("USER") or "unknown"
    while (it := rq.item(url, item_id)) is not None:
        _show_item(it)
        answer = decide or _ask()
        if answer == "quit":
            return
        if answer != "skip":
            try:
                rq.decide(url, it.id, answer, who)
            except (LookupError, ValueError) as exc:
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(2) from None
            console.print(f"item {it.id}: {answer} recorded; it applies from the next night's linkage")
        if decide or item_id is not None or answer == "skip":
            return
    if item_id is not None:
        err.print(f"[red]error:[/red] no open review item {item_id}")
        raise typer.Exit(2)
    console.print("the review queue is empty")


def _show_item(it) -> None:  # noqa: ANN001
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


@app.command()
def summary(night: Annotated[str, typer.Option(help="Night to summarise (YYYY-MM-DD).")]) -> None:
    """Write and show a night's summary (what the night_summary DAG does)."""
    from childindex.reports.summary import night_summary

    console.print_json(data=night_summary(_settings(), date.fromisoformat(night)))


@app.command()
def report(
    night: Annotated[str, typer.Option(help="Night to report on (YYYY-MM-DD).")],
    days: Annotated[int, typer.Option(min=2, max=366, help="Nights of history in the trend plots.")] = 30,
) -> None:
    """Build (or rebuild) a night's HTML quality report and the index of all reports."""
    from childindex.reports import build_report

    # Counts from the index: whoever rebuilds a report needs no key.
    path = build_report(_settings(need_key=False), date.fromisoformat(night), days)
    console.print(f"quality report: {path}")


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option(help="Count what would be deleted; delete nothing.")] = False,
    today: Annotated[str | None, typer.Option(help="Run as of this day (YYYY-MM-DD).")] = None,
    show_policy: Annotated[
        bool, typer.Option("--policy", help="Print the retention policy (a Markdown table) and exit.")
    ] = False,
) -> None:
    """Apply the retention periods and print the deletion certificate."""
    from childindex.retention import policy_markdown, run_retention

    if show_policy:
        from childindex.errors import SettingsError
        from childindex.settings import load_settings

        try:
            settings = load_settings()
        except SettingsError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        console.print(policy_markdown(settings.retention), markup=False, highlight=False, soft_wrap=True)
        return

    cert = run_retention(_settings(), date.fromisoformat(today) if today else _today(), dry_run=dry_run)
    console.print_json(data=cert)


@app.command("time-travel")
def time_travel(
    data_dir: Annotated[
        Path, typer.Option(help="An empty folder of its own (created); never a real index's data directory.")
    ] = Path("time-travel-data"),
    years: Annotated[int, typer.Option(min=1, max=60, help="Simulated years.")] = 20,
    children: Annotated[int, typer.Option(min=10, help="Children in the population at the start.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    delivery_days: Annotated[int, typer.Option(min=1, help="Days between agencies' deliveries.")] = 28,
    retention_days: Annotated[int, typer.Option(min=1, help="Days between retention runs.")] = 1,
    high_noise: Annotated[
        bool, typer.Option(help="Five times the usual typos and nicknames: review items and decisions happen.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the result (counts only) to this JSON file.")] = None,
) -> None:
    """Simulate years of deliveries with retention on a simulated clock; check nothing outlives its policy.

    Synthetic children are born, start and leave services and move house; agencies deliver
    what changed through the real intake and linkage; retention runs with the simulated day
    as its clock and every run is audited. Exits 1 if anything outlived its policy or
    retention deleted a record still in use.
    """
    from rich.progress import Progress

    from childindex.simulation import demo as demo_mod
    from childindex.simulation.timetravel import simulate

    data_dir = data_dir.absolute()
    if data_dir.exists() and any(data_dir.iterdir()):
        err.print(f"[red]error:[/red] {data_dir} is not empty; time travel deletes data: give it an empty folder")
        raise typer.Exit(2)
    _, env = demo_mod.prepare(data_dir)
    os.environ.update({k: v for k, v in env.items() if k.startswith("CHILDINDEX_")})
    # A small population's deltas vary a lot in size (an empty one is quarantined still).
    os.environ.setdefault("CHILDINDEX_VALIDATION__ROW_COUNT_FACTOR", "1000")
    settings = _settings()
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("simulating", total=None)

        def progress(n: int, horizon: int) -> None:
            bar.update(task, completed=n, total=horizon, description=f"day {n:,} of {horizon:,}")

        result = simulate(
            settings,
            years=years,
            children=children,
            seed=seed,
            delivery_days=delivery_days,
            retention_days=retention_days,
            high_noise=high_noise,
            progress=progress,
        )
    data = result.as_dict()
    if out:
        out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    keys = ("children", "source_records", "involvements", "rows", "index_bytes", "data_bytes")
    table = Table("", *(k.replace("_", " ") for k in keys))
    for label in ("first", "peak", "final"):
        table.add_row(label, *(f"{data[label][k]:,}" for k in keys))
    console.print(table)
    deleted = Table("rule", "rows deleted", "files deleted")
    for rule, files in result.files_deleted.items():
        deleted.add_row(rule, f"{sum(result.rows_deleted.get(rule, {}).values()):,}", f"{files:,}")
    console.print(deleted)
    console.print(
        f"{years} years: {result.deliveries} deliveries, {result.retention_runs} retention runs, "
        f"{result.reviews_decided} review items decided, {result.seconds:.0f} s; files {result.files}"
    )
    if result.violations:
        for v in result.violations[:20]:
            err.print(f"[red]violation:[/red] {v}")
        raise typer.Exit(1)
    console.print("nothing outlived its policy; every open involvement was kept")


@db_app.command("apply-sql")
def db_apply_sql(
    path: Annotated[Path, typer.Argument(help="The script, e.g. sql/02_grants.sql.", exists=True, dir_okay=False)],
) -> None:
    """Run an SQL script (roles, grants) on the PostgreSQL index, as the role in CHILDINDEX_INDEX_URL."""
    from childindex.index.db import apply_sql_file

    url = _settings(need_key=False).index_url
    assert url is not None
    try:
        apply_sql_file(url, path)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - the database's own message names the statement
        err.print(f"[red]error:[/red] {path.name}: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"{path.name} applied")


@app.command()
def doctor() -> None:
    """Check configuration, the index database and schema, the key and every folder; say what to fix.

    Exits 0 when a night can run (warnings included), 1 when something must be fixed first.
    Prints no secret: the key is shown only by its id.
    """
    from childindex.cli.doctor import diagnose

    checks = diagnose()
    table = Table("check", "status", "detail")
    colour = {"ok": "green", "warn": "yellow", "FAIL": "red"}
    for c in checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
    console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        err.print(f"[red]{len(failed)} check(s) failed[/red]: fix them before the next night")
        raise typer.Exit(1)
    console.print("ready")


@app.command("settings")
def show_settings() -> None:
    """Show the resolved settings (secrets masked)."""
    from childindex.errors import SettingsError
    from childindex.settings import load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print_json(settings.model_dump_json())


@contracts_app.command("show")
def contracts_show(agency: Annotated[str, typer.Argument(help="education, health or social_care.")]) -> None:
    """Print an agency's contract as JSON."""
    from childindex.contracts.contract import load_contract
    from childindex.errors import ContractError

    try:
        console.print_json(load_contract(agency).model_dump_json())
    except ContractError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@contracts_app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs/contracts"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the pages on disk are out of date.")] = False,
) -> None:
    """Generate the human-readable contract pages from the YAML contracts."""
    from childindex.contracts.docs import render_all

    _write_or_check(render_all(), out, check, "childindex contracts docs")


def _write_or_check(pages: dict[str, str], out: Path, check: bool, command: str) -> None:
    """Write generated files, or (check) exit 1 naming those that differ from disk."""
    stale = []
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        path = out / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        err.print(f"out of date: {', '.join(stale)}; run '{command}'")
        raise typer.Exit(1)
    console.print(f"{len(pages)} files {'checked' if check else 'written'} in {out}")


@contracts_app.command("suites")
def contracts_suites(
    out: Annotated[Path, typer.Option(help="Folder for the GX suites.")] = Path("expectations"),
    check: Annotated[bool, typer.Option(help="Exit 1 if the suites on disk are out of date.")] = False,
) -> None:
    """Generate the Great Expectations suites (expectations/<agency>.json) from the contracts."""
    from childindex.validation.gx.suites import render_all

    _write_or_check(render_all(), out, check, "childindex contracts suites")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where everything goes (created).")] = Path("demo-data"),
    children: Annotated[int, typer.Option(min=1, help="Children in the synthetic population.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    night: Annotated[
        str, typer.Option(help="The night to generate and process (YYYY-MM-DD).")
    ] = DEFAULT_FIRST_NIGHT.isoformat(),
    serve: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Then serve Airflow's UI on 127.0.0.1:PORT until Ctrl-C, to see each DAG run's "
            "'Quality report' tab. Every visitor is admin: for a laptop demo only.",
        ),
    ] = None,
) -> None:
    """Generate a synthetic night and run every DAG on it with Airflow's own runner."""
    from childindex.simulation import demo as demo_mod

    start = time.perf_counter()
    night_date = date.fromisoformat(night)
    paths, env = demo_mod.prepare(data_dir)
    os.environ.update(env)
    settings = _settings()
    settings.ensure_dirs()
    from childindex.index.db import migrate
    from childindex.simulation.synthetic import generate_night

    with console.status("generating synthetic extracts"):
        generate_night(
            settings.drop_root, paths.truth_dir, children=children, seed=seed, first_night=night_date, night_number=0
        )
    with console.status("migrating the index"):
        migrate(settings.index_url)
    with console.status(f"running the DAGs with Airflow (log: {paths.log_file})"):
        try:
            demo_mod.run_dags(env, night_date, paths.log_file)
        except RuntimeError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    from childindex.reports.summary import summary_path

    summary_data = json.loads(summary_path(settings, night_date).read_text(encoding="utf-8"))
    _print_summary(summary_data, time.perf_counter() - start, settings)
    if serve:
        console.print(
            f"Airflow's UI: http://127.0.0.1:{serve}/dags/night_summary (a run's 'Quality report' tab); "
            f"Ctrl-C stops it (log: {paths.log_file})"
        )
        raise typer.Exit(demo_mod.serve_ui(env, serve, paths.log_file))


def _print_summary(s: dict, seconds: float, settings) -> None:  # noqa: ANN001
    table = Table(
        "agency",
        "files",
        "rows read",
        "accepted",
        "rejected",
        "quarantined",
        "duplicate",
        title=f"childindex night {s['night']}",
    )
    for agency, e in s["agencies"].items():
        table.add_row(
            agency,
            *(
                str(e[k])
                for k in (
                    "files",
                    "rows_read",
                    "rows_accepted",
                    "rows_rejected",
                    "files_quarantined",
                    "files_duplicate",
                )
            ),
        )
    console.print(table)
    console.print(
        f"children in the index: {s['children']}  (source records {s['source_records']}, "
        f"records linked to another record {s['records_linked']}, "
        f"children known to several agencies {s['children_in_several_agencies']})"
    )
    lk = s.get("linkage") or {}
    if lk:
        console.print(
            f"linkage: model {lk['model_now']}, {lk.get('pairs_scored', 0)} pairs scored, "
            f"{lk.get('links', 0)} links, review queue {lk['review_queue_open']} open "
            f"(childindex review)"
        )
    acc = s.get("accuracy")
    if acc:
        console.print(
            f"against ground truth: precision {acc['precision']:.4f}, recall {acc['recall']:.4f}, "
            f"F1 {acc['f1']:.4f} (B-cubed F1 {acc['bcubed_f1']:.4f})"
        )
    console.print(f"time taken: {seconds:.1f} s")
    console.print(f"index: {s['index_url']}")
    console.print(f"receipts: {settings.outbox_root}")
    console.print(f"night summary: {settings.reports_dir}")
    from childindex.reports import report_path

    quality = report_path(settings, date.fromisoformat(s["night"]))
    if quality.exists():
        console.print(f"quality report: {quality}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
