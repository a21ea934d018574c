"""Benchmark: probabilistic linkage at national scale (issue: linkage with Splink).

Targets on this 2-core machine:
- one million children (every organisation's initial load) linked from scratch into an empty
  index in at most 10 minutes, peak RSS at most 8 GiB;
- a nightly increment of at least 10,000 records linked against that index in at most
  60 seconds;
- and, for scale, a plain Splink deduplication of the same records (same model, predict and
  cluster at the match threshold, nothing written), timed in the same run.

Each measured step runs in its own process, so its peak RSS is its own. Everything is
written to ``--workdir`` (a fresh temporary folder by default; give an empty one): the
extracts are generated and validated there first, which is not what is measured.

The three-sector setup of the earlier results (one file per sector a night): the tests'
registry ``tests/organisations.yaml`` (one area, one organisation per sector: health RH1,
education 840, social care E06000047) through CHILDINDEX_ORGANISATIONS_FILE, so the figures
stay comparable with those before the organisations registry. With one area there are no
cross-authority pairs; ``bench_night.py`` measures a night across all of England.

    uv run python benchmarks/bench_linkage.py [--children 1000000] [--workdir DIR]
        [--increment-records 10000] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "organisations.yaml"
FIRST = date(2026, 11, 24)
INCREMENT_RECORDS = 10_000

# Steps run as `python -c STEP <name> <args...>` in a child process.
STEP = r"""
import json, sys, time
from datetime import date
from pathlib import Path
step, out = sys.argv[1], Path(sys.argv[2])
from childindex.settings import load_settings
settings = load_settings()
t = time.perf_counter()
if step == "intake":
    from childindex.intake.process import run_intake
    night = date.fromisoformat(sys.argv[3])
    rows = 0
    for org in settings.registry.organisations:
        rows += sum(r["rows_accepted"] for r in run_intake(settings, org.code, night))
    result = {"rows_accepted": rows}
elif step == "link":
    from childindex.linkage import link_pending
    result = link_pending(settings, date.fromisoformat(sys.argv[3])).as_dict()
elif step == "notices":
    from childindex.notices.night import send_notices
    result = send_notices(settings, date.fromisoformat(sys.argv[3])).as_dict()
    result.pop("by_organisation")
elif step == "plain_splink":
    import logging
    import duckdb
    from splink import DuckDBAPI, Linker
    from childindex.linkage.features import register_features
    from childindex.linkage.model import current_model_path, load_model
    con = duckdb.connect(config={"threads": 2, "temp_directory": str(settings.work_dir)})
    # Not hive: a folder organisation=840 would make the code an integer (as linkage.batch says).
    con.execute("CREATE TABLE staged AS SELECT * FROM read_parquet($g, hive_partitioning = false)", {"g": sys.argv[3]})
    con.execute("CREATE TABLE latest AS SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY source_key) = 1")
    register_features(con, "latest", "f")
    model = load_model(current_model_path(settings.linkage.model_dir))
    n = con.execute("SELECT count(*) FROM f").fetchall()[0][0]
    linker = Linker(DuckDBAPI(connection=con).register("f"), model.for_population(n), log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_probability=settings.linkage.match_threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=settings.linkage.match_threshold)
    count = f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}"
    result = {"records": n, "clusters": con.execute(count).fetchall()[0][0]}
result["seconds"] = round(time.perf_counter() - t, 2)
out.write_text(json.dumps(result))
"""


def run_step(env: dict, work: Path, name: str, *args: str) -> dict:
    """Run one step in a child process; its result with its wall time and peak RSS."""
    out, log = work / f"{name}.json", work / f"{name}.log"
    # Output to a file, not a pipe: a pipe nobody reads until the step ends fills and blocks it.
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", STEP, name, str(out), *args], env=env, stderr=sink)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{log.read_text(errors='replace')[-3000:]}")
    result = json.loads(out.read_text())
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    print(name, json.dumps(result), flush=True)
    return result


def stage_increment(env: dict, work: Path, settings, truth: Path, children: int, records: int) -> tuple[int, int, date]:
    """Generate and stage the generator's nightly deltas after FIRST until they hold at least
    ``records`` records: (nights, records staged, the last night)."""
    from childindex.simulation.synthetic import generate_night

    k, staged, night = 0, 0, FIRST
    while staged < records:
        k += 1
        night = FIRST + timedelta(days=k)
        generate_night(settings.drop_root, truth, registry=settings.registry, children=children, seed=7,
                       first_night=FIRST, night_number=k)  # fmt: skip
        staged += run_step(env, work, "intake", night.isoformat())["rows_accepted"]
    return k, staged, night


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="An empty folder to work in.")
    parser.add_argument(
        "--increment-records", type=int, default=INCREMENT_RECORDS, help="Records staged for the increment."
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where linkage-<children>.json goes.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="childindex-bench-linkage-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if data.exists():
        raise SystemExit(f"{work} holds an earlier run; give an empty --workdir")
    key = work / "key"
    from childindex.keyfiles import create_key_file

    if not key.exists():
        create_key_file(key)
    env = {
        **os.environ,
        "CHILDINDEX_DATA_DIR": str(data),
        "CHILDINDEX_PSEUDONYMISATION_KEY_FILE": str(key),
        "CHILDINDEX_REFERENCE_KEY": "benchmark-reference-key-" + "0" * 40,
        "CHILDINDEX_ORGANISATIONS_FILE": str(REGISTRY),
        # A large first load: no row-count band (there is no history) and no staging expiry.
        "CHILDINDEX_RETENTION__STAGING_DAYS": "365",
    }
    os.environ.update(env)
    from childindex.index.db import migrate
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    settings = load_settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    truth = work / "truth"
    result: dict = {
        "benchmark": "linkage",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "children": args.children,
    }
    # The initial load, staged (not measured).
    t = time.perf_counter()
    registry = settings.registry
    generate_night(settings.drop_root, truth, registry=registry, children=args.children, seed=7, first_night=FIRST)
    staged0 = run_step(env, work, "intake", FIRST.isoformat())
    result["initial_records_staged"] = staged0["rows_accepted"]
    result["prepare_seconds"] = round(time.perf_counter() - t, 1)
    # Plain Splink on the same records, then our night from scratch.
    first_files = f"{settings.staging_dir}/organisation=*/night={FIRST.isoformat()}/*.parquet"
    result["plain_splink"] = run_step(env, work, "plain_splink", first_files)
    result["from_scratch"] = run_step(env, work, "link", FIRST.isoformat())
    # Nightly deltas, staged until they hold at least INCREMENT_RECORDS records, then linked at once.
    k, _staged, night = stage_increment(env, work, settings, truth, args.children, args.increment_records)
    result["increment_nights"] = k
    result["increment"] = run_step(env, work, "link", night.isoformat())
    from childindex.linkage.evaluation import accuracy

    result["accuracy"] = accuracy(settings, truth)
    result["targets"] = {"from_scratch_seconds": 600, "from_scratch_peak_rss_mib": 8192, "increment_seconds": 60}
    result["ratio_from_scratch_to_plain_splink"] = round(
        result["from_scratch"]["seconds"] / result["plain_splink"]["seconds"], 2
    )
    result["ratio_increment_to_plain_splink"] = round(
        result["increment"]["seconds"] / result["plain_splink"]["seconds"], 3
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"linkage-{args.children}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
