"""The sandbox's commands: ``generate`` synthetic extracts, run the ``demo``, ``time-travel``.

Only these commands reach ``childindex.simulation``; no stage and no DAG does.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from childindex.cli.app import DEFAULT_FIRST_NIGHT, cli_settings, console, err, new_app, parse_date
from childindex.cli.output import JsonFlag, line, paths, print_json, show, table
from childindex.cli.reports import print_night
from childindex.errors import UsageError
from childindex.settings import Settings, load_settings

app = new_app()


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
    noise_profile: Annotated[
        str,
        typer.Option(
            help="Noise in the records: 'default' (the world the bundled linkage model was trained on) or "
            "'harsh' (more, and other kinds of, noise: phonetic and OCR misspellings, transposed names, "
            "blank required fields, date of birth and postcode typos)."
        ),
    ] = "default",
    as_json: JsonFlag = False,
) -> None:
    """Write one night of synthetic extracts into every registered organisation's drop folder."""
    from childindex.simulation.synthetic import NoiseConfig, generate_night

    try:
        noise = NoiseConfig.profile(noise_profile)
    except ValueError as exc:
        raise UsageError(f"--noise-profile: {exc}") from None
    settings = load_settings()
    truth = truth_dir or settings.ground_truth_dir or settings.data_dir / "ground_truth"
    start = time.perf_counter()
    result = generate_night(
        settings.drop_root,
        truth,
        registry=settings.registry,
        children=children,
        seed=seed,
        first_night=parse_date(first_night, "--first-night"),
        night_number=night_number,
        noise=noise,
    )
    if as_json:
        print_json(
            {
                "night": result.night,
                "children": result.children,
                "files": {code: str(path) for code, path in result.files.items()},
                "rows": result.rows,
                "ground_truth": str(result.truth_path),
            }
        )
        return
    t = table("organisation", "file", "rows", title=f"night {result.night} ({result.children} children)")
    t.columns[2].justify = "right"
    for code, path in result.files.items():
        t.add_row(code, path.name, f"{result.rows[code]:,}")
    show(t)
    console.print(f"{len(result.files)} files in {time.perf_counter() - start:.1f} s")
    paths({"drop folders": settings.drop_root, "ground truth": result.truth_path})


@app.command("synthetic-registry")
def synthetic_registry(
    out: Annotated[Path, typer.Option(help="The registry file to write (YAML).", dir_okay=False)],
    region: Annotated[
        str | None, typer.Option(help="One English region (e.g. 'North East'); all of England when absent.")
    ] = None,
    areas: Annotated[int | None, typer.Option(min=1, help="Only the first N areas (in the region).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the organisations registry of a synthetic England (or a region of it): every
    authority's education and children's social care services and invented NHS providers.
    Point CHILDINDEX_ORGANISATIONS_FILE at it, then 'childindex generate' fills their drop folders."""
    from childindex.organisations.registry import load_registry
    from childindex.simulation.england import write_registry

    path = write_registry(out, region=region, areas=areas)
    registry = load_registry(path.absolute())
    if as_json:
        print_json({"registry": str(path), "organisations": len(registry.organisations), "areas": len(registry.areas)})
        return
    console.print(f"{len(registry.organisations)} organisations in {len(registry.areas)} areas")
    line("registry", path)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where everything goes (created).")] = Path("demo-data"),
    children: Annotated[int, typer.Option(min=1, help="Children in the synthetic population.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    night: Annotated[
        str, typer.Option(help="The night to generate and process (YYYY-MM-DD).")
    ] = DEFAULT_FIRST_NIGHT.isoformat(),
    dags_folder: Annotated[
        Path, typer.Option(help="The repository's dags/ folder, which Airflow runs (the demo runs from a clone).")
    ] = Path("dags"),
    serve: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Then serve Airflow on 127.0.0.1:PORT until Ctrl-C (its UI with each DAG run's 'Quality report' "
            "tab and task logs, a scheduler that runs what you trigger). Every visitor is admin: for a laptop "
            "demo only.",
        ),
    ] = None,
    serve_only: Annotated[
        bool,
        typer.Option(
            "--serve-only",
            help="Serve the data folder of an earlier demo without running a night (on --serve's port, 8080 "
            "when not given).",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the night's summary (with the seconds taken and the configuration file) as one JSON "
            "document; progress goes to stderr.",
        ),
    ] = False,
) -> None:
    """Generate a synthetic night and run every DAG on it with Airflow's own runner.

    Writes childindex.toml in the working directory (the data folder, the index, the key
    files; never a key), so every other command run there works on the demo's data.
    """
    from childindex.index.db import migrate
    from childindex.reports.summary import summary_path
    from childindex.simulation import demo as demo_mod
    from childindex.simulation.synthetic import generate_night

    start = time.perf_counter()
    if serve_only:
        if not (data_dir.absolute() / "airflow" / "airflow.db").is_file():
            raise UsageError(f"{data_dir.absolute()} holds no demo: run 'childindex demo' first (without --serve-only)")
        where, env = demo_mod.prepare(data_dir, dags_folder)
        raise typer.Exit(_serve(demo_mod, where, env, serve or 8080))
    night_date = parse_date(night, "--night")
    where, env = demo_mod.prepare(data_dir, dags_folder)
    overrides = demo_mod.demo_settings(where)
    config = demo_mod.write_config(demo_mod.config_target(where), overrides)
    settings = cli_settings(**overrides)
    settings.ensure_dirs()
    shown = err if as_json else console  # with --json, stdout holds the document alone
    with shown.status("generating synthetic extracts"):
        generate_night(
            settings.drop_root,
            where.truth_dir,
            registry=settings.registry,
            children=children,
            seed=seed,
            first_night=night_date,
            night_number=0,
        )
    with shown.status("migrating the index"):
        migrate(settings.index_url)
    shown.print(f"running every DAG with Airflow's own runner (Airflow's output: {where.log_file})", soft_wrap=True)
    with shown.status("starting Airflow") as status:
        progress = _DemoProgress(status, shown)
        demo_mod.run_dags(env, night_date, where.log_file, progress=progress)
    summary_data = json.loads(summary_path(settings, night_date).read_text(encoding="utf-8"))
    if as_json:
        seconds = round(time.perf_counter() - start, 1)
        print_json({**summary_data, "seconds": seconds, "configuration": str(config), "failed_tasks": progress.failed})
    else:
        print_night(summary_data, settings, time.perf_counter() - start)
        _print_config(config, night_date)
    if progress.failed:  # a DAG run can succeed past a failed mapped task: the demo does not
        failed = ", ".join(progress.failed)
        err.print(f"[red]{len(progress.failed)} task(s) failed[/red]: {failed}; see {where.log_file}", soft_wrap=True)
        raise typer.Exit(1)
    if serve:
        raise typer.Exit(_serve(demo_mod, where, env, serve))


def _serve(demo_mod: Any, where: Any, env: dict[str, str], port: int) -> int:
    log = where.airflow_home / "serve.log"
    console.print(
        f"Airflow on http://127.0.0.1:{port}/dags/night_summary (a run's 'Quality report' tab and task logs); "
        "the DAGs stay paused, so nothing runs on its own schedule: Trigger (with 'Unpause on trigger') runs one "
        f"on the demo's data. Ctrl-C stops it (log: {log})",
        soft_wrap=True,
    )
    code: int = demo_mod.serve_ui(env, port, log)
    return code


def _print_config(config: Path, night: date) -> None:
    here = Path.cwd() / config.name
    # uv may not be on PATH (installed with pip --user): name the environment's own command.
    command = ".venv/bin/childindex" if Path(".venv/bin/childindex").exists() else "childindex"
    if config == here:
        console.print(
            f"configuration: {config}: every childindex command run in this folder now uses the demo's data, "
            f"e.g. {command} doctor, review, summary --night {night}, report --night {night} "
            "(CHILDINDEX_* variables win over the file)",
            soft_wrap=True,
        )
    else:
        console.print(
            f"configuration: {config} (your {here} was left as it is): to use the demo's data, "
            f"export CHILDINDEX_CONFIG_FILE={config}",
            soft_wrap=True,
        )


class _DemoProgress:
    """The demo's console while Airflow runs: the task running now (a spinner, on a terminal)
    and a line as each task and each DAG run finishes, with its state and seconds."""

    def __init__(self, status: Any, out: Console) -> None:
        self.status, self.out = status, out
        self.failed: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        kind, dag_id = event["event"], event.get("dag_id", "")
        if kind == "migrating":
            self.status.update("migrating Airflow's metadata database")
        elif kind == "dag_started":
            self.status.update(f"{dag_id}: starting")
        elif kind == "task_started":
            self.status.update(f"{dag_id}: {_task_name(event)}")
        elif kind == "task_finished":
            if event["state"] == "failed":
                self.failed.append(f"{dag_id}.{_task_name(event)}")
            self.out.print(
                f"  {dag_id:<20} {_task_name(event):<28} {event['state']:<8} {event['seconds']:6.1f} s", soft_wrap=True
            )
        elif kind == "dag_finished":
            state = str(event["state"]).rsplit(".", 1)[-1].lower()  # DagRunState.SUCCESS or success
            colour = "green" if state == "success" else "red"
            self.out.print(f"[bold]{dag_id}[/bold]: [{colour}]{state}[/{colour}] in {event['seconds']:.1f} s")


def _task_name(event: dict[str, Any]) -> str:
    """A task's id, and a mapped task's label (the organisation's code) or index."""
    if event.get("map_index", -1) < 0:
        return str(event["task_id"])
    return f"{event['task_id']}[{event.get('label') or event['map_index']}]"


@app.command("time-travel")
def time_travel(
    data_dir: Annotated[
        Path, typer.Option(help="An empty folder of its own (created); never a real index's data directory.")
    ] = Path("time-travel-data"),
    years: Annotated[int, typer.Option(min=1, max=60, help="Simulated years.")] = 20,
    children: Annotated[int, typer.Option(min=10, help="Children in the population at the start.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    delivery_days: Annotated[int, typer.Option(min=1, help="Days between organisations' deliveries.")] = 28,
    retention_days: Annotated[int, typer.Option(min=1, help="Days between retention runs.")] = 1,
    high_noise: Annotated[
        bool, typer.Option(help="Five times the usual typos and nicknames: review items and decisions happen.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the result (counts only) to this JSON file.")] = None,
    as_json: JsonFlag = False,
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
        raise UsageError(f"{data_dir} is not empty; time travel deletes data: give it an empty folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = _time_travel_settings(demo_mod.demo_settings(demo_mod.DemoPaths(data_dir)))
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
    if as_json:
        print_json(data)
        raise typer.Exit(1 if result.violations else 0)
    keys = ("children", "source_records", "involvements", "rows", "index_bytes", "data_bytes")
    sizes = table("", *(k.replace("_", " ") for k in keys))
    for label in ("first", "peak", "final"):
        sizes.add_row(label, *(f"{data[label][k]:,}" for k in keys))
    show(sizes)
    deleted = table("rule", "rows deleted", "files deleted")
    for rule, files in result.files_deleted.items():
        deleted.add_row(rule, f"{sum(result.rows_deleted.get(rule, {}).values()):,}", f"{files:,}")
    show(deleted)
    console.print(
        f"{years} years: {result.deliveries} deliveries, {result.retention_runs} retention runs, "
        f"{result.reviews_decided} review items decided, {result.notices} notices and {result.retractions} "
        f"retractions sent, {result.seconds:.0f} s; files {result.files}"
    )
    if result.violations:
        for v in result.violations[:20]:
            err.print(f"[red]violation:[/red] {v}")
        raise typer.Exit(1)
    console.print("nothing outlived its policy; every open involvement was kept")


def _time_travel_settings(overrides: dict[str, Any]) -> Settings:
    """The demo's settings in the simulation's folder. A small population's deltas vary a lot
    in size (an empty one is quarantined still), so the row-count band is widened unless
    CHILDINDEX_VALIDATION__ROW_COUNT_FACTOR says otherwise."""
    settings = cli_settings(**overrides)
    if "row_count_factor" not in settings.validation.model_fields_set:
        settings = cli_settings(**overrides, validation={"row_count_factor": 1000})
    return settings
