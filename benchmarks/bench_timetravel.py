"""Benchmark: twenty simulated years of deliveries with retention on a simulated clock.

Issue "Retention that proves itself": runs ``childindex time-travel`` (the real intake,
linkage and retention over a synthetic life-course population) in a child process on a
fresh folder, and writes the result (peak and final index size, rows and files deleted per
rule, every audit's verdict; counts only) beside the wall time and peak RSS. High noise by
default, so that review items and the simulated clerk's decisions (and their retention) occur.

The world is the configured registry (``config/organisations.yaml``, the demo's North East
organisations, unless CHILDINDEX_ORGANISATIONS_FILE names another): each organisation delivers
its own file. Results before the organisations registry had three agencies; for that
three-sector setup, set CHILDINDEX_ORGANISATIONS_FILE=tests/organisations.yaml.

    uv run python benchmarks/bench_timetravel.py [--years 20] [--children 300]
        [--delivery-days 28] [--retention-days 1] [--default-noise] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--children", type=int, default=300)
    parser.add_argument("--delivery-days", type=int, default=28)
    parser.add_argument("--retention-days", type=int, default=1)
    parser.add_argument("--default-noise", action="store_true", help="the generator's usual noise (few reviews)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where timetravel-<years>y.json goes.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="childindex-timetravel-"))
    out = scratch / "result.json"
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable, "-m", "childindex.cli", "time-travel",
                "--data-dir", str(scratch / "data"), "--out", str(out),
                "--years", str(args.years), "--children", str(args.children),
                "--delivery-days", str(args.delivery_days), "--retention-days", str(args.retention_days),
                *([] if args.default_noise else ["--high-noise"]),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if not out.exists():
            raise SystemExit(f"time-travel failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        result = json.loads(out.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    history = result.pop("history")
    record = {
        "benchmark": "timetravel",
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "exit_code": done.returncode,
        "wall_seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        **result,
        # Children in the index once a simulated year (the full series is one per delivery).
        "children_by_year": [h["children"] for h in history[:: max(1, round(365.25 / args.delivery_days))]],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"timetravel-{args.years}y.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k] for k in ("exit_code", "wall_seconds", "peak", "final")}, indent=2))
    print(f"written to {path}")
    if done.returncode:
        raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
