"""Benchmark: validating an 11-million-row education extract (issue: validation agencies can trust).

Target: at least 150,000 rows per second with peak RSS under 4 GiB on a 2-core machine,
never holding the extract in memory at once. Generates the extract with the project's own
generator (education rows are about 75% of children, so ~14.7M children give ~11M rows),
then runs the pre-check (`check_file`: streaming read, SQL rules and the GX suite, exactly
as intake does before staging) in a child process and measures it.

One education service sends the whole extract, as the single education agency did before
the organisations registry: the tests' registry ``tests/organisations.yaml`` (one area, one
organisation per sector; education is ``840``, contract ``education_mis``) through
CHILDINDEX_ORGANISATIONS_FILE. The other sectors' files are generated too and deleted.

    uv run python benchmarks/bench_validation.py [--rows 11000000] [--workdir DIR] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "organisations.yaml"
ORGANISATION = "840"  # the tests' registry's education service (contract education_mis)
NIGHT = date(2026, 11, 24)
EDUCATION_SHARE = 0.7468  # education rows per child at the generator's defaults (measured)

CHILD = r"""
import json, sys, time
from datetime import date
from pathlib import Path
from childindex.validation.gx.runner import gx_context
from childindex.intake.check import check_file
from childindex.settings import load_settings
gx_context()  # GX's import is a one-off per worker process; not part of the per-file cost
settings = load_settings(data_dir=Path(sys.argv[2]))
organisation = settings.registry.get(sys.argv[4])
start = time.perf_counter()
receipt = check_file(settings, organisation, Path(sys.argv[1]), date(2026, 11, 25))
seconds = time.perf_counter() - start
Path(sys.argv[3]).write_text(json.dumps({"seconds": seconds, "rows_read": receipt.rows_read,
    "rows_accepted": receipt.rows_accepted, "rows_rejected": receipt.rows_rejected, "outcome": receipt.outcome,
    "checks": len(receipt.checks)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=11_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the generated extract here.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where validation-education.json goes.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="childindex-bench-validation-"))
    drop, truth = work / "drop", work / "truth"
    children = int(args.rows / EDUCATION_SHARE) + 1
    from childindex.organisations.registry import load_registry
    from childindex.simulation.synthetic.extracts import extract_name

    registry = load_registry(REGISTRY)
    contract = registry.get(ORGANISATION).contract
    extract = registry.drop_folder(ORGANISATION, drop) / extract_name(contract, NIGHT)
    gen_seconds = None
    if not extract.exists():
        from childindex.simulation.synthetic import generate_night

        t = time.perf_counter()
        generated = generate_night(drop, truth, registry=registry, children=children, seed=2026, first_night=NIGHT)
        gen_seconds = round(time.perf_counter() - t, 1)
        assert generated.files[ORGANISATION] == extract, generated.files
        for code, path in generated.files.items():  # only education is measured
            if code != ORGANISATION:
                path.unlink()
    env = {**os.environ, "CHILDINDEX_DATA_DIR": str(work / "data"), "CHILDINDEX_ORGANISATIONS_FILE": str(REGISTRY)}
    out = work / "run.json"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(extract), str(work / "data"), str(out), ORGANISATION],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    run = json.loads(out.read_text())
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "validation",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "organisation": ORGANISATION,
        "contract": contract,
        "file_bytes": extract.stat().st_size,
        "generate_seconds": gen_seconds,
        **run,
        "rows_per_second": round(run["rows_read"] / run["seconds"]),
        "peak_rss_mib": round(peak_mib, 1),
        "target_rows_per_second": 150_000,
        "target_peak_rss_mib": 4096,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "validation-education.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["rows_per_second"] < 150_000 or peak_mib > 4096:
        raise SystemExit("below target")


if __name__ == "__main__":
    main()
