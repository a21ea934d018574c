"""Benchmark: intake's fixed cost per file, in a cold task process and in a warmed worker.

Airflow runs each mapped intake task in a process forked from its worker. Before, every
such process imported Great Expectations and built its context and suite itself; now a
Celery worker does that once at start-up (childindex.orchestration.celery_config ->
warm()) and each task process inherits it. Target (issue "From three agencies to
England"): at most 2 s of fixed cost per file on this machine.

The night's files are small on purpose (the demo's 30 organisations, 3,000 children: 4 to
450 rows each), so a file's time is nearly all fixed cost. Each file runs alone:

- cold: a fresh Python process per file that imports what it needs and processes it
  (what a task process did before);
- warm: a process that has run warm() forks one child per file, which processes it
  (what a task process forked from a warmed Celery worker does).

    uv run python benchmarks/bench_file_overhead.py [--children 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NIGHT = date(2026, 11, 24)
KEY = "bench-only-key-" + "0123456789abcdef" * 3
ONE_FILE = """
import sys
from datetime import date
from pathlib import Path
from childindex.index.ledger import Ledger
from childindex.intake.process import process_file
from childindex.settings import load_settings
s = load_settings()
r = process_file(s, sys.argv[1], Path(sys.argv[2]), date.fromisoformat(sys.argv[3]), Ledger(s.index_url))
assert r.outcome in ("accepted", "accepted_with_rejections"), r.outcome
"""


def prepare(children: int, root: Path, env: dict[str, str]) -> list[tuple[str, Path, int]]:
    """A migrated index and one night's files for every organisation, twice (cold and warm)."""
    os.environ.update(env)
    from childindex.index.db import migrate
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    settings = load_settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    result = generate_night(settings.drop_root, root / "truth", registry=settings.registry, children=children)
    return [(code, path, result.rows[code]) for code, path in result.files.items()]


def cold(files: list[tuple[str, Path, int]], env: dict[str, str]) -> list[float]:
    times = []
    for code, path, _rows in files:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", ONE_FILE, code, str(path), NIGHT.isoformat()], env=env, check=True)
        times.append(time.perf_counter() - start)
    return times


def warm(files: list[tuple[str, Path, int]]) -> tuple[float, list[float]]:
    from childindex.index.ledger import Ledger
    from childindex.intake.process import process_file
    from childindex.orchestration.warm import warm as warm_up
    from childindex.settings import load_settings

    warm_seconds = warm_up()
    times = []
    for code, path, _rows in files:
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the task process
            try:
                s = load_settings()
                r = process_file(s, code, path, NIGHT, Ledger(s.index_url))
                os._exit(0 if r.outcome in ("accepted", "accepted_with_rejections") else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert status == 0, f"{code}: the forked task failed ({status})"
        times.append(time.perf_counter() - start)
    return warm_seconds, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="childindex-bench-overhead-") as tmp:
        root = Path(tmp)
        runs = {}
        for mode in ("cold", "warm"):
            env = {
                **os.environ,
                "CHILDINDEX_DATA_DIR": str(root / mode),
                "CHILDINDEX_PSEUDONYMISATION_KEY": KEY,
                "CHILDINDEX_REFERENCE_KEY": "benchmark-reference-key-" + "0" * 40,
            }
            files = prepare(args.children, root / mode, env)
            if mode == "cold":
                times = cold(files, env)
                warm_seconds = 0.0
            else:
                warm_seconds, times = warm(files)
            rows = [r for _c, _p, r in files]
            runs[mode] = {
                "files": len(files),
                "rows_min": min(rows),
                "rows_max": max(rows),
                "seconds_per_file_median": round(statistics.median(times), 2),
                "seconds_per_file_max": round(max(times), 2),
                "seconds_all_files": round(sum(times), 1),
                "worker_warm_up_seconds": round(warm_seconds, 1),
            }
            print(mode, json.dumps(runs[mode]), flush=True)
    out = {
        "benchmark": "file_overhead",
        "when": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "children": args.children,
        "target_seconds_per_file": 2.0,
        **runs,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "file-overhead.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
