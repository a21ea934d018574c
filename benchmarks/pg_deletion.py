"""Measurement: where a deleted child's bytes remain in PostgreSQL, step by step.

Retention deletes rows in transactions; SQLite then overwrites them (secure_delete) and
vacuums. PostgreSQL keeps deleted tuples in its heap pages until VACUUM prunes them and a
later write reuses the space, and in its write-ahead log until the segment is recycled.
This script plants a canary child through the index schema in a throwaway database, then
searches every file of that database (base/<oid>/) and pg_wal/ for the canary's bytes
after: the insert, the DELETE, a plain VACUUM, and VACUUM FULL (each followed by a
CHECKPOINT so pages reach disk). It needs to read PostgreSQL's data directory (run as
root or the postgres user on the database host) and writes results/pg-deletion.json.

    uv run python benchmarks/pg_deletion.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

RESULTS = Path(__file__).resolve().parent / "results"
CANARY = "Zqpgcanary" + "given"


def _found(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and CANARY.encode() in path.read_bytes():
                hits.append(path.name)
        except OSError:
            continue
    return sorted(hits)


def main() -> None:
    from childindex.index.db import engine_for, migrate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where pg-deletion.json goes.")
    args = parser.parse_args()
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    name = f"childindex_pgdel_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
    url = make_url(args.url).set(database=name).render_as_string(hide_password=False)
    steps = []
    try:
        migrate(url)
        db = create_engine(url, isolation_level="AUTOCOMMIT")
        with db.connect() as conn:
            oid = conn.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar_one()
            base, wal = data_dir / "base" / str(oid), data_dir / "pg_wal"

            def step(label: str) -> None:
                conn.execute(text("CHECKPOINT"))
                steps.append({"after": label, "database_files": _found(base), "wal_files": len(_found(wal))})

            d = date(2015, 1, 1)
            # Live neighbours on the same page (a page that empties completely is truncated
            # away, which is not the usual case); the canary is the newest row, so it sits
            # at the page's free-space edge, where compaction does not write over it.
            row = "INSERT INTO child VALUES (:id, :g, 'Family', :d, 'F', 'LS6 2AB', :d, :d)"
            conn.execute(text(row), [{"id": f"N{i}", "g": f"Neighbour{i}", "d": d} for i in range(40)])
            conn.execute(text(row), {"id": "C1", "g": CANARY, "d": d})
            step("insert")
            conn.execute(text("DELETE FROM child WHERE child_id = 'C1'"))
            step("delete")
            conn.execute(text("VACUUM child"))
            step("vacuum")
            conn.execute(text("VACUUM FULL child"))
            step("vacuum full")
        db.dispose()
        engine_for(url).dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    record = {
        "benchmark": "pg_deletion",
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "steps": steps,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "pg-deletion.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
