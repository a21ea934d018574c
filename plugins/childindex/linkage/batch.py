"""The DuckDB work space of a linkage run, and the batch of staged records it links.

Shared by a night's linkage (:mod:`.night`) and training (:mod:`.training`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from childindex.errors import ChildindexError, DiskFull, LinkageOutOfMemory
from childindex.settings import Settings


def connect(settings: Settings) -> Any:
    """A DuckDB connection for linkage work: bounded memory, spilling to the work folder
    within a disk budget.

    Without a limit DuckDB takes up to 80% of the machine's memory for its buffers (12 GiB
    for a million children here); with it, the work spills and the night stays within
    its budget. Without a spill budget DuckDB spills until the disk is full; with it, the
    work fails with an out-of-memory error that :func:`over_budget` names."""
    import duckdb

    spill = spill_dir(settings)
    return duckdb.connect(
        config={
            "threads": 2,
            "memory_limit": settings.linkage.duckdb_memory_limit,
            "temp_directory": str(spill),
            "max_temp_directory_size": spill_budget(settings.linkage.spill_budget, spill),
            "preserve_insertion_order": False,
        }
    )


def spill_dir(settings: Settings) -> Path:
    return settings.work_dir / "linkage-spill"


def spill_budget(budget: str, folder: Path) -> str:
    """A spill budget as DuckDB takes it: a size as it is, or a share ("50%") of the space
    free on the disk of ``folder`` (its nearest existing parent) now, in bytes."""
    import shutil

    if not budget.endswith("%"):
        return budget
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    return f"{int(free * float(budget[:-1]) / 100)}B"


def over_budget(exc: BaseException, settings: Settings, night: date | None = None) -> ChildindexError | None:
    """The error to raise instead of ``exc`` when DuckDB (itself, or under Splink, which
    wraps it with the whole SQL text) went past its spill budget, filled the disk or ran out
    of memory; None for any other error. One line: no SQL, no value.

    Past the spill budget or the disk is :class:`DiskFull` (retried: a budget that is a
    share of the free space grows when space is freed); out of memory is terminal."""
    import duckdb

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, duckdb.OutOfMemoryException | duckdb.IOException):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    text = str(seen)
    linkage = settings.linkage
    after = "nothing was published or saved: the index, its model and the staged files are as they were"
    if isinstance(seen, duckdb.OutOfMemoryException) and "max_temp_directory_size" in text:
        return DiskFull(
            f"linkage needed more spill space in {spill_dir(settings)} than CHILDINDEX_LINKAGE__SPILL_BUDGET "
            f"({linkage.spill_budget}); {after}. If a retry fails too, lower "
            f"CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS ({linkage.max_block_comparisons}) or raise the budget",
            stage="linkage",
            night=night,
        )
    if isinstance(seen, duckdb.OutOfMemoryException):
        return LinkageOutOfMemory(
            f"linkage needed more memory than CHILDINDEX_LINKAGE__DUCKDB_MEMORY_LIMIT "
            f"({linkage.duckdb_memory_limit}) and could not spill it; {after}. Raise the limit, then run the "
            "night again",
            night=night,
        )
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return DiskFull(
            f"no space left on the disk holding {spill_dir(settings)} while linking; {after}. Free space or "
            f"lower CHILDINDEX_LINKAGE__SPILL_BUDGET ({linkage.spill_budget}); it is retried",
            stage="linkage",
            night=night,
        )
    return None


def load_batch(con: Any, paths: list[str]) -> None:
    """Table ``batch``: the newest staged version of each record (latest night, then file),
    with ``file_ord``, the position of its file in ``paths``."""
    import pyarrow as pa

    if not paths:  # only empty deliveries: nothing to link, but they are still marked linked
        from childindex.staging.layout import STAGING_COLUMNS
        from childindex.whitelist import DATE_FIELDS

        types = {"night": "DATE", "source_row": "BIGINT", "file_ord": "BIGINT", **{f: "DATE" for f in DATE_FIELDS}}
        columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in (*STAGING_COLUMNS, "file_ord"))
        con.execute(f"CREATE TABLE batch ({columns})")
        return
    con.register("file_order", pa.table({"file_ord": list(range(len(paths))), "filename": paths}))
    con.execute(
        "CREATE TABLE batch AS SELECT * EXCLUDE (rn, filename) FROM ("
        " SELECT s.*, f.file_ord, row_number() OVER (PARTITION BY s.source_key"
        "   ORDER BY s.night DESC, f.file_ord DESC, s.source_row DESC) AS rn"
        # Not hive: a folder organisation=840 would make the staged code '840' an integer.
        # By name: a file staged before a column existed (local_ref) reads it as NULL.
        " FROM read_parquet($paths, filename = true, hive_partitioning = false, union_by_name = true) s"
        " JOIN file_order f USING (filename))"
        " WHERE rn = 1",
        {"paths": paths},
    )
