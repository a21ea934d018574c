"""Benchmark: one night's initial load from every organisation in England, through intake and linkage.

Target (issue "From three agencies to England"): the initial load of 1,000,000 children,
split across all 461 organisations of a synthetic England (153 authority areas: each area's
education and children's social care services and the NHS providers serving it, so one
file per organisation, 461 files), through intake and linkage in at most 20 minutes on this
2-core machine.

Run as production runs it:

- intake: two worker processes (one per core), each of which has called
  ``childindex.orchestration.warm.warm()`` once (as a Celery worker does at start-up), then
  forks one child per file that runs the intake task body
  (``childindex.orchestration.tasks.intake_one``), as Airflow's task supervisor does in a
  prefork worker. Files are handed out in registry order (``pending_everywhere``) from one
  shared queue. Intake's wall time runs from the moment both workers are warm (a worker is
  warm before a night starts) to the last file done; the warm-up is reported on its own. A
  task that fails is tried again at once, up to CHILDINDEX_TASK_RETRIES times (Airflow retries
  it, after a back-off not modelled here); the result lists the organisations retried.
- linkage: ``childindex.linkage.night.link_pending`` in its own process.

Each measured step (generation, intake, linkage, accuracy) runs in its own process, so its
peak RSS (from ``wait4``: the largest process of its tree) is its own. Generation and the
accuracy figures are not part of the night. Per-file times come from the file ledger's
``seconds`` column (intake's own time over the file) and from each forked task's
fork-to-exit wall (that plus the task's own start and settings).

The registry is written by ``childindex.simulation.england.write_registry`` into the work
folder and named by CHILDINDEX_ORGANISATIONS_FILE. The index is SQLite in the work folder
unless ``--postgres URL`` names a PostgreSQL server, where a throwaway database is created
(and dropped afterwards). The work folder (a fresh temporary folder unless ``--workdir``
names an empty one) is deleted afterwards unless ``--keep``. ``--region`` limits the registry
to one region's organisations (``"North East"``: 30 files), for a quick trial of the script,
not for the target.

    uv run python benchmarks/bench_night.py [--children 1000000] [--workdir DIR] [--keep]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--region "North East"] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
NIGHT = date(2026, 11, 24)
SEED = 7
WORKERS = 2
TARGET_SECONDS = 20 * 60
STEP_FLAG = "--step"  # the script runs its own steps: bench_night.py --step NAME OUT [ARGS]


# --------------------------------------------------------------------------- steps (child processes)


def step_generate(truth: str, children: str) -> dict[str, Any]:
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    settings = load_settings()
    started = time.perf_counter()
    result = generate_night(
        settings.drop_root,
        Path(truth),
        registry=settings.registry,
        children=int(children),
        seed=SEED,
        first_night=NIGHT,
    )
    rows = sorted(result.rows.values())
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "files": len(result.files),
        "rows": sum(rows),
        "rows_per_file_min": rows[0],
        "rows_per_file_median": statistics.median(rows),
        "rows_per_file_max": rows[-1],
        "children_in_population": result.children,
    }


def _task(code: str, path: str) -> int:
    """The forked task process: the intake task body, as Airflow's task runner calls it."""
    try:
        from childindex.orchestration.tasks import intake_one

        intake_one(code, path, NIGHT)
        return 0
    except BaseException:
        traceback.print_exc()
        return 1


def _worker(number: int, files: Any, reports: Any, retries: int) -> None:
    """A warmed worker: warm() once, then one forked task per file from the shared queue."""
    import resource

    from childindex.orchestration.warm import warm

    warm_seconds = warm()
    reports.put(("ready", number, warm_seconds))
    done = []
    while (item := files.get()) is not None:
        order, code, path = item
        for attempt in range(1 + retries):  # a failed task is tried again, as Airflow's retries do
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    status = _task(code, path)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(status)
            _, status, usage = os.wait4(pid, 0)
            done.append(
                {
                    "order": order,
                    "organisation": code,
                    "worker": number,
                    "attempt": attempt,
                    "wall_seconds": time.perf_counter() - started,
                    "exit": os.waitstatus_to_exitcode(status),
                    "peak_rss_kib": usage.ru_maxrss,
                }
            )
            if done[-1]["exit"] == 0:
                break
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reports.put(("done", number, {"warm_seconds": warm_seconds, "peak_rss_kib": self_kib, "files": done}))


def step_intake() -> dict[str, Any]:
    import multiprocessing

    from sqlalchemy import func, select

    from childindex.index.db import engine_for
    from childindex.index.models import FileLedger
    from childindex.intake.discovery import pending_everywhere
    from childindex.settings import load_settings

    settings = load_settings()
    pending = pending_everywhere(settings)  # registry order
    ctx = multiprocessing.get_context("fork")
    files, reports = ctx.Queue(), ctx.Queue()
    retries = settings.task_retries
    workers = [ctx.Process(target=_worker, args=(n, files, reports, retries)) for n in range(WORKERS)]
    warm_started = time.perf_counter()
    for w in workers:
        w.start()
    warm = [reports.get()[2] for _ in workers]  # both workers are warm before the night starts
    warm_wall = time.perf_counter() - warm_started
    started = time.perf_counter()
    for order, (code, path) in enumerate(pending):
        files.put((order, code, str(path)))
    for _ in workers:
        files.put(None)
    finished = [reports.get()[2] for _ in workers]
    seconds = time.perf_counter() - started
    for w in workers:
        w.join()
    attempts = sorted((f for w in finished for f in w["files"]), key=lambda f: (f["order"], f["attempt"]))
    tasks = [f for f in attempts if f["exit"] == 0]  # per file: the attempt that succeeded
    retried = sorted({f["organisation"] for f in attempts if f["exit"] != 0})
    failed = sorted({f["organisation"] for f in attempts} - {f["organisation"] for f in tasks})
    with engine_for(settings.index_url).connect() as conn:
        ledger = conn.execute(
            select(FileLedger.organisation, FileLedger.status, FileLedger.rows_read, FileLedger.rows_accepted,
                   FileLedger.seconds).where(FileLedger.night == NIGHT)
        ).all()  # fmt: skip
        by_status = dict(
            conn.execute(
                select(FileLedger.status, func.count()).where(FileLedger.night == NIGHT).group_by(FileLedger.status)
            ).all()
        )
    rows_of = {r.organisation: r.rows_read for r in ledger}
    slowest = sorted(tasks, key=lambda f: -f["wall_seconds"])[:5]
    return {
        "seconds": round(seconds, 2),
        "workers": WORKERS,
        "files": len(pending),
        "files_by_status": by_status,
        "tasks_failed": failed,
        "tasks_retried": retried,  # see the step's log (WORK/intake.log) for each failed attempt's error
        "rows_read": sum(r.rows_read for r in ledger),
        "rows_accepted": sum(r.rows_accepted for r in ledger),
        "organisations": len(settings.registry.organisations),
        "organisations_sending": len({code for code, _path in pending}),
        "areas": len(settings.registry.areas),
        "worker_warm_up_seconds": [round(s, 2) for s in warm],
        "worker_warm_up_wall_seconds": round(warm_wall, 2),
        "ledger_seconds_per_file": _spread([r.seconds or 0.0 for r in ledger]),
        "ledger_seconds_all_files": round(sum(r.seconds or 0.0 for r in ledger), 1),
        "fork_to_exit_seconds_per_file": _spread([f["wall_seconds"] for f in tasks]),
        "fork_to_exit_seconds_all_files": round(sum(f["wall_seconds"] for f in tasks), 1),
        "files_per_worker": [sum(f["worker"] == n for f in tasks) for n in range(WORKERS)],
        "task_attempts": len(attempts),
        "slowest_files": [
            {
                "organisation": f["organisation"],
                "rows_read": rows_of.get(f["organisation"]),
                "seconds": round(f["wall_seconds"], 2),
            }
            for f in slowest
        ],  # fmt: skip
        "peak_rss_mib_worker": round(max(w["peak_rss_kib"] for w in finished) / 1024, 1),
        "peak_rss_mib_task": round(max((f["peak_rss_kib"] for f in attempts), default=0) / 1024, 1),
    }


def step_link() -> dict[str, Any]:
    from childindex.linkage.night import link_pending
    from childindex.settings import load_settings

    started = time.perf_counter()
    result = link_pending(load_settings(), NIGHT).as_dict()
    return {**result, "seconds": round(time.perf_counter() - started, 2)}


def step_accuracy(truth: str) -> dict[str, Any]:
    from childindex.linkage.evaluation import accuracy
    from childindex.settings import load_settings

    started = time.perf_counter()
    scores = accuracy(load_settings(), Path(truth)) or {}
    return {**scores, "seconds": round(time.perf_counter() - started, 2)}


STEPS = {"generate": step_generate, "intake": step_intake, "link": step_link, "accuracy": step_accuracy}


def _spread(values: list[float]) -> dict[str, float]:
    """Median, 90th percentile and maximum, in seconds."""
    if not values:
        return {"median": 0.0, "p90": 0.0, "max": 0.0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
    return {"median": round(statistics.median(ordered), 3), "p90": round(p90, 3), "max": round(ordered[-1], 3)}


def run_as_step(argv: list[str]) -> None:
    name, out, *args = argv
    result = STEPS[name](*args)
    Path(out).write_text(json.dumps(result), encoding="utf-8")


# --------------------------------------------------------------------------- the benchmark (parent process)


def run_step(env: dict[str, str], work: Path, name: str, *args: str) -> dict[str, Any]:
    """Run one step in a child process (output to WORK/<name>.log); its result, wall time and peak RSS."""
    out, log = work / f"{name}.json", work / f"{name}.log"
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, __file__, STEP_FLAG, name, str(out), *args], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise SystemExit(f"step {name} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["step_wall_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # the largest process of the step's tree
    print(name, json.dumps(result), flush=True)
    return result


def _throwaway_database(server: str) -> tuple[str, Any]:
    """A new database on the PostgreSQL server; its URL and a function that drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"childindex_night_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


def night(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from childindex.keyfiles import create_key_file
    from childindex.simulation.england import write_registry

    registry_file = write_registry(work / "organisations.yaml", region=args.region)
    create_key_file(work / "key")
    env = {
        **os.environ,
        "CHILDINDEX_DATA_DIR": str(work / "data"),
        "CHILDINDEX_PSEUDONYMISATION_KEY_FILE": str(work / "key"),
        "CHILDINDEX_REFERENCE_KEY": "benchmark-reference-key-" + "0" * 40,
        "CHILDINDEX_ORGANISATIONS_FILE": str(registry_file),
    }
    drop = None
    if args.postgres:
        env["CHILDINDEX_INDEX_URL"], drop = _throwaway_database(args.postgres)
    try:
        os.environ.update(env)
        from childindex.index.db import migrate
        from childindex.settings import load_settings

        settings = load_settings()
        settings.ensure_dirs()
        migrate(settings.index_url)
        truth = str(work / "truth")
        generated = run_step(env, work, "generate", truth, str(args.children))
        intake = run_step(env, work, "intake")
        link = run_step(env, work, "link")
        scores = run_step(env, work, "accuracy", truth)
    finally:
        if drop:
            from childindex.index.db import engine_for

            engine_for(env["CHILDINDEX_INDEX_URL"]).dispose()
            drop()
    total = intake["seconds"] + link["seconds"]
    return {
        "benchmark": "night",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "children": args.children,
        "region": args.region or "England",
        "index": "postgresql" if args.postgres else "sqlite",
        "organisations": intake["organisations"],
        "organisations_sending": intake["organisations_sending"],
        "areas": intake["areas"],
        "files": intake["files"],
        "rows_read": intake["rows_read"],
        "rows_accepted": intake["rows_accepted"],
        "generation_seconds": generated["seconds"],
        "intake_seconds": intake["seconds"],
        "linkage_seconds": link["seconds"],
        "night_seconds": round(total, 1),
        "worker_warm_up_seconds": intake["worker_warm_up_seconds"],
        "per_file_ledger_seconds": intake["ledger_seconds_per_file"],
        "per_file_fork_to_exit_seconds": intake["fork_to_exit_seconds_per_file"],
        "peak_rss_mib_intake": intake["peak_rss_mib"],
        "peak_rss_mib_linkage": link["peak_rss_mib"],
        "accuracy": {
            k: scores.get(k)
            for k in (
                "precision",
                "recall",
                "cross_authority_recall",
                "cross_authority_pairs_true",
                "cross_authority_children",
                "f1",
                "children_predicted",
                "children_true",
            )
        },  # fmt: skip
        "target_night_seconds": TARGET_SECONDS,
        "within_target": total <= TARGET_SECONDS,
        "steps": {"generate": generated, "intake": intake, "link": link, "accuracy": scores},
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == STEP_FLAG:
        run_as_step(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="An empty folder to work in (default: a temp one).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder afterwards.")
    parser.add_argument(
        "--region", default=None, help="One English region's organisations only (a quick trial; default: England)."
    )
    parser.add_argument("--postgres", default=None, metavar="URL", help="A PostgreSQL server for the index.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where night-<children>.json goes.")
    args = parser.parse_args()
    if args.workdir:
        work = args.workdir.absolute()
        if work.exists() and any(work.iterdir()):
            raise SystemExit(f"{work} is not empty; give an empty --workdir")
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="childindex-bench-night-"))
    try:
        result = night(args, work)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    args.results.mkdir(parents=True, exist_ok=True)
    scope = f"-{args.region.lower().replace(' ', '-')}" if args.region else ""
    path = args.results / f"night-{args.children}{scope}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}, indent=2))
    print(path)
    if result["steps"]["intake"]["tasks_retried"]:
        print(f"intake tasks failed and were retried: {result['steps']['intake']['tasks_retried']}")
    if result["steps"]["intake"]["tasks_failed"]:
        raise SystemExit(f"intake tasks failed: {result['steps']['intake']['tasks_failed']}")
    if not result["within_target"]:
        raise SystemExit(f"slower than the {TARGET_SECONDS // 60}-minute target")


if __name__ == "__main__":
    main()
