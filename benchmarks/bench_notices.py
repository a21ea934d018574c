"""Benchmark: a night's notices against a one-million-child index (issue 17).

Target on this 2-core machine: the notices for a nightly increment (at least 10,000 records
linked against the index) take at most 30 seconds.

The index is built as ``bench_linkage.py`` builds it (the generator's one million children in
the tests' three-organisation registry, every organisation's initial load linked from
scratch), without plain Splink. Then, each in its own process (wall time and peak RSS):

1. the notices of the initial load (every child known to two or more organisations is new:
   the largest night there is, and what a first deployment on a full index would send);
2. nightly deltas staged until they hold ``--increment-records`` records, linked at once;
3. the notices of that increment: **the target**.

Precision and recall against the generator's truth are computed after each, outside the
timed step (production has no truth). Results go to ``results/notices-<children>.json``.

    uv run python benchmarks/bench_notices.py [--children 1000000] [--workdir DIR]
        [--increment-records 10000] [--index-url URL] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from bench_linkage import FIRST, INCREMENT_RECORDS, REGISTRY, RESULTS, run_step, stage_increment

TARGET_SECONDS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="An empty folder to work in.")
    parser.add_argument("--increment-records", type=int, default=INCREMENT_RECORDS)
    parser.add_argument("--index-url", default=None, help="The index (default SQLite in the work folder).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="childindex-bench-notices-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if data.exists():
        raise SystemExit(f"{work} holds an earlier run; give an empty --workdir")
    from childindex.keyfiles import create_key_file

    key, reference = create_key_file(work / "key"), create_key_file(work / "reference-key")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHILDINDEX_")},
        "CHILDINDEX_DATA_DIR": str(data),
        "CHILDINDEX_PSEUDONYMISATION_KEY_FILE": str(key),
        "CHILDINDEX_REFERENCE_KEY_FILE": str(reference),
        "CHILDINDEX_ORGANISATIONS_FILE": str(REGISTRY),
        "CHILDINDEX_RETENTION__STAGING_DAYS": "365",
    }
    if args.index_url:
        env["CHILDINDEX_INDEX_URL"] = args.index_url
    os.environ.clear()
    os.environ.update(env)
    from childindex.index.db import migrate
    from childindex.notices.evaluation import notice_accuracy
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    settings = load_settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    truth = work / "truth"
    result: dict = {
        "benchmark": "notices",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "children": args.children,
        "index": settings.index_url.split(":", 1)[0],
    }
    t = time.perf_counter()
    generate_night(settings.drop_root, truth, registry=settings.registry, children=args.children, seed=7,
                   first_night=FIRST)  # fmt: skip
    result["initial_records_staged"] = run_step(env, work, "intake", FIRST.isoformat())["rows_accepted"]
    result["initial_link"] = run_step(env, work, "link", FIRST.isoformat())
    result["prepare_seconds"] = round(time.perf_counter() - t, 1)
    result["initial_notices"] = run_step(env, work, "notices", FIRST.isoformat())
    result["initial_accuracy"] = _accuracy(notice_accuracy, settings, FIRST, truth)
    k, staged, night = stage_increment(env, work, settings, truth, args.children, args.increment_records)
    result["increment_nights"] = k
    result["increment_records_staged"] = staged
    result["increment_link"] = run_step(env, work, "link", night.isoformat())
    result["increment_notices"] = run_step(env, work, "notices", night.isoformat())
    result["increment_accuracy"] = _accuracy(notice_accuracy, settings, night, truth)
    result["target_increment_seconds"] = TARGET_SECONDS
    result["target_met"] = result["increment_notices"]["seconds"] <= TARGET_SECONDS
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"notices-{args.children}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _accuracy(notice_accuracy, settings, night: date, truth: Path) -> dict:
    t = time.perf_counter()
    figures = notice_accuracy(settings, night, truth) or {}
    return {**{k: round(v, 4) for k, v in figures.items()}, "seconds": round(time.perf_counter() - t, 1)}


if __name__ == "__main__":
    main()
