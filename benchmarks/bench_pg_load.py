"""Benchmark: load a one-million-child index into PostgreSQL through publish's bulk path.

Issue "Production stack, for real": a one-million-child index loaded in at most 60 s. The
index tables (children, their organisations' source records, involvements, and the
organisation and area rows publish syncs) are built from the project's generator (true
identities of a 1M-child population, one source record per sector that knows the child,
HMAC-shaped keys from DuckDB's sha256) as Arrow tables, then written with
``childindex.index.store.insert_arrow`` (COPY on PostgreSQL) in one transaction, with the
schema's indexes in place, and committed. For contrast, the previous path (executemany)
loads the first 5% of the children into a second database.

The three-sector setup of the earlier results: the tests' registry ``tests/organisations.yaml``
(one area, E06000047; one organisation per sector: health RH1, education 840, social care
E06000047) holds every record, so the row counts stay those measured before the organisations
registry. Which organisation a record names does not change what COPY costs.

    uv run python benchmarks/bench_pg_load.py [--children 1000000]
        [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "organisations.yaml"
NIGHT = date(2026, 11, 24)


def index_tables(children: int):
    import duckdb
    import numpy as np
    import pyarrow as pa

    from childindex.organisations.registry import load_registry
    from childindex.simulation.synthetic.population import build_population
    from childindex.simulation.synthetic.records import true_identity_frame
    from childindex.whitelist import SECTORS

    registry = load_registry(REGISTRY)
    org = {sector: registry.in_sector(sector)[0] for sector in SECTORS}

    pop = build_population(children, seed=11, first_night=NIGHT)
    p = np.arange(children, dtype=np.int64)
    who = true_identity_frame(pop, p)
    child = pa.table(
        {
            "child_id": pa.array([f"C{i:09d}" for i in range(children)]),
            "given_name": pa.array(who["given_name"]),
            "family_name": pa.array(who["family_name"]),
            "date_of_birth": pa.array(who["date_of_birth"].dt.date, pa.date32()),
            "sex": pa.array(who["sex"]),
            "postcode": pa.array(who["postcode"]),
            "first_seen": pa.array(np.full(children, NIGHT), pa.date32()),
            "last_seen": pa.array(np.full(children, NIGHT), pa.date32()),
        }
    )
    counts = {sector: int((pop.enrol[sector] >= 0).sum()) for sector in SECTORS}
    known = pa.table(
        {
            "p": pa.array(np.concatenate([np.flatnonzero(pop.enrol[sector] >= 0) for sector in SECTORS])),
            "sector": pa.array(np.concatenate([np.full(counts[sector], sector) for sector in SECTORS])),
            "organisation": pa.array(np.concatenate([np.full(counts[sector], org[sector].code) for sector in SECTORS])),
            "area": pa.array(np.concatenate([np.full(counts[sector], org[sector].areas[0]) for sector in SECTORS])),
        }
    )
    organisations = pa.table(
        {
            "code": [o.code for o in registry.organisations],
            "name": [o.name for o in registry.organisations],
            "sector": [o.sector for o in registry.organisations],
        }
    )
    areas = pa.table({"code": [a.code for a in registry.areas], "name": [a.name for a in registry.areas]})
    con = duckdb.connect()
    con.register("child", child)
    con.register("known", known)
    base = con.sql(
        """SELECT sha256(k.organisation || ':' || k.p) AS source_key, k.organisation, k.sector, k.area, c.child_id,
                  CASE WHEN k.sector <> 'education' THEN sha256('nhs:' || k.p) END AS nhs_key,
                  CASE WHEN k.sector <> 'health' THEN sha256('upn:' || k.p) END AS upn_key,
                  sha256('m:' || c.given_name || c.family_name || c.date_of_birth) AS match_key,
                  c.given_name, c.family_name, c.date_of_birth, c.sex, c.postcode
           FROM known k JOIN child c ON c.child_id = printf('C%09d', k.p)"""
    ).to_arrow_table()
    con.register("base", base)
    record = con.sql(
        "SELECT source_key, organisation, child_id, nhs_key, upn_key, match_key, DATE '2026-11-24' AS first_seen, "
        "DATE '2026-11-24' AS last_seen, given_name, family_name, date_of_birth, sex, postcode FROM base"
    ).to_arrow_table()
    involvement = con.sql(
        "SELECT source_key, child_id, organisation, sector, area, 'school_nursing' AS service, "
        "'0113 496 0001' AS contact_route, DATE '2020-09-01' AS start_date, CAST(NULL AS DATE) AS end_date, "
        "DATE '2026-11-24' AS last_seen FROM base"
    ).to_arrow_table()
    con.close()
    return organisations, areas, child, record, involvement


def load(url: str, tables, copy: bool) -> float:
    from sqlalchemy import insert

    from childindex.index.db import engine_for, migrate
    from childindex.index.models import Area, Child, Involvement, Organisation, SourceRecord
    from childindex.index.store import _FETCH_BATCH, insert_arrow

    migrate(url)
    start = time.perf_counter()
    with engine_for(url).begin() as conn:
        for model, table in zip((Organisation, Area, Child, SourceRecord, Involvement), tables, strict=True):
            if copy:
                insert_arrow(conn, model, table)
            else:  # the path before COPY: the driver's executemany
                for batch in table.to_batches(_FETCH_BATCH):
                    conn.execute(insert(model), batch.to_pylist())
    return time.perf_counter() - start


def main() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from childindex.index.db import engine_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where pg-load-<children>.json goes.")
    args = parser.parse_args()
    t0 = time.perf_counter()
    organisations, areas, child, record, involvement = index_tables(args.children)
    build = time.perf_counter() - t0
    small = args.children // 20
    small_ids = set(child["child_id"].to_pylist()[:small])
    ids = pa.array(sorted(small_ids))
    subset = [
        organisations,
        areas,
        child.slice(0, small),
        record.filter(pc.is_in(record["child_id"], value_set=ids)),
        involvement.filter(pc.is_in(involvement["child_id"], value_set=ids)),
    ]
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    names = [f"childindex_load_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls = [make_url(args.url).set(database=n).render_as_string(hide_password=False) for n in names]
        copy_seconds = load(urls[0], (organisations, areas, child, record, involvement), copy=True)
        many_seconds = load(urls[1], subset, copy=False)
        for url in urls:
            engine_for(url).dispose()
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    rows = child.num_rows + record.num_rows + involvement.num_rows
    small_rows = sum(t.num_rows for t in subset[2:])  # children, records, involvements
    result = {
        "benchmark": "pg_load",
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "children": child.num_rows,
        "source_records": record.num_rows,
        "involvements": involvement.num_rows,
        "copy_seconds": round(copy_seconds, 1),
        "copy_rows_per_second": round(rows / copy_seconds),
        "executemany_children": small,
        "executemany_seconds": round(many_seconds, 1),
        "executemany_rows_per_second": round(small_rows / many_seconds),
        "build_tables_seconds": round(build, 1),
        "target_seconds": 60,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"pg-load-{args.children}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
