"""The DuckDB work space of a linkage run, and the batch of staged records it links.

Shared by a night's linkage (:mod:`.night`) and training (:mod:`.training`).
"""

from __future__ import annotations

from typing import Any

from childindex.settings import Settings


def connect(settings: Settings) -> Any:
    """A DuckDB connection for linkage work: bounded memory, spilling to the work folder.

    Without a limit DuckDB takes up to 80% of the machine's memory for its buffers (12 GiB
    for a million children here); with it, the work spills and the night stays within
    its budget."""
    import duckdb

    return duckdb.connect(
        config={
            "threads": 2,
            "memory_limit": settings.linkage.duckdb_memory_limit,
            "temp_directory": str(settings.work_dir / "linkage-spill"),
            "preserve_insertion_order": False,
        }
    )


def load_batch(con: Any, paths: list[str]) -> None:
    """Table ``batch``: the newest staged version of each record (latest night, then file)."""
    import pyarrow as pa

    if not paths:  # only empty deliveries: nothing to link, but they are still marked linked
        from childindex.staging.layout import STAGING_COLUMNS
        from childindex.whitelist import DATE_FIELDS

        types = {"night": "DATE", "source_row": "BIGINT", **{f: "DATE" for f in DATE_FIELDS}}
        columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in STAGING_COLUMNS)
        con.execute(f"CREATE TABLE batch ({columns})")
        return
    con.register("file_order", pa.table({"file_ord": list(range(len(paths))), "filename": paths}))
    con.execute(
        "CREATE TABLE batch AS SELECT * EXCLUDE (rn, file_ord, filename) FROM ("
        " SELECT s.*, f.file_ord, row_number() OVER (PARTITION BY s.source_key"
        "   ORDER BY s.night DESC, f.file_ord DESC, s.source_row DESC) AS rn"
        # Not hive: a folder organisation=840 would make the staged code '840' an integer.
        # By name: a file staged before a column existed (local_ref) reads it as NULL.
        " FROM read_parquet($paths, filename = true, hive_partitioning = false, union_by_name = true) s"
        " JOIN file_order f USING (filename))"
        " WHERE rn = 1",
        {"paths": paths},
    )
