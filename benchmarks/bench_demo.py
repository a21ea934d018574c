"""Benchmark: `childindex demo` end to end (generate, migrate, every DAG through dag.test()).

Target (issue "A whole night on embedded defaults"): 10,000 children in under 3 minutes on
a 2-core machine. Runs the demo in a child process on a fresh data directory, measures
wall time and the peak RSS of the process tree, and writes a JSON result.

The demo's world is the configured registry (``config/organisations.yaml`` unless
CHILDINDEX_ORGANISATIONS_FILE names another: the North East's organisations, one file each
a night), no longer three agencies' three files: results from before the organisations
registry (``rows_read`` 17,514 at 10,000 children) are not directly comparable.

    uv run python benchmarks/bench_demo.py [--children 10000] [--repeat 3] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
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


def run_once(children: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix="childindex-bench-"))
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "childindex.cli",
                "demo",
                "--children",
                str(children),
                "--data-dir",
                str(data),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"demo failed (exit {done.returncode}); see {data}/airflow/demo-run.log")
        summary = json.loads(next((data / "reports").glob("night-*.json")).read_text())
        return {
            "seconds": round(seconds, 2),
            "organisations_registered": summary["organisations_registered"],
            "files_in": summary["files_in"],
            "children_in_index": summary["children"],
            "rows_read": summary["rows_read"],
            "precision": summary["accuracy"]["precision"],
            "recall": summary["accuracy"]["recall"],
            "cross_authority_recall": summary["accuracy"]["cross_authority_recall"],
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where demo-<children>.json goes.")
    args = parser.parse_args()
    runs = [run_once(args.children) for _ in range(args.repeat)]
    # ru_maxrss of children: the largest process in the demo's tree (kilobytes on Linux).
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    times = sorted(r["seconds"] for r in runs)
    result = {
        "benchmark": "demo",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "children": args.children,
        "seconds_min": times[0],
        "seconds_median": times[len(times) // 2],
        "seconds_max": times[-1],
        "peak_rss_mib_largest_process": round(peak_mib, 1),
        "target_seconds": 180,
        "runs": runs,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"demo-{args.children}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if times[-1] > 180:
        raise SystemExit("slower than the 3-minute target")


if __name__ == "__main__":
    main()
