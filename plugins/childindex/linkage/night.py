"""Probabilistic linkage of each night's records into the index, with stable child ids.

A night: tonight's staged records (the newest version of each) are scored by the Splink
model (:mod:`.model`) against each other and against the records already in the index
(:mod:`.scoring`); scores and people's decisions become links, reviews or nothing; links
become children (:mod:`.graph`); and the changes are published in one transaction
(:func:`childindex.index.store.publish`). The index is never re-deduplicated from
scratch: its existing children only change when tonight's records, or a person's
decision, say so.

Training (:mod:`.training`) is separate: its own command and DAG, not part of a night.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from childindex.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LinkResult:
    files: int = 0
    records: int = 0
    pairs_scored: int = 0
    links: int = 0
    review_items: int = 0
    links_undone: int = 0
    children_created: int = 0
    children_updated: int = 0
    merges: int = 0
    splits: int = 0
    model_version: int = 0
    model_reason: str = ""
    # Bounded blocks (:mod:`.bounds`): records held back, the files they came from (still
    # staged), blocks over the limit, and the largest block within it (in comparisons).
    records_held: int = 0
    files_held: int = 0
    blocks_over_limit: int = 0
    largest_block: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def link_pending(settings: Settings, night: date) -> LinkResult:
    """Link every staged-but-unlinked file into the index in one transaction, under the
    index lock (a second run at once waits, then finds the files linked; retention and key
    rotation, which also rewrite the index's records, take the same lock).

    Tonight's records in a block over ``CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS`` are held
    back (:mod:`.bounds`): their files stay staged, their senders get a notice
    (:mod:`.held`), and the rest links. Raises DiskFull past the spill budget and
    LinkageOutOfMemory past the memory limit, with nothing published."""
    from childindex.locks import INDEX_LOCK, stage_lock

    with stage_lock(settings, INDEX_LOCK):
        return _link_pending(settings, night)


def _link_pending(settings: Settings, night: date) -> LinkResult:
    from childindex.index.ledger import Ledger
    from childindex.index.store import fetch_decisions, fetch_existing, publish, put_metrics
    from childindex.keys.epochs import check_key
    from childindex.linkage.batch import connect, load_batch, over_budget
    from childindex.linkage.bounds import Held, hold_back_oversize_blocks
    from childindex.linkage.features import register_features
    from childindex.linkage.graph import assign_ids, cluster, plan
    from childindex.linkage.held import write_held_notices
    from childindex.linkage.model import current_model_path, load_model
    from childindex.linkage.review import open_pairs
    from childindex.linkage.scoring import decide, score

    ledger = Ledger(settings.index_url)
    staged = ledger.staged()
    result = LinkResult(files=len(staged))
    if not staged:
        return result
    check_key(settings.index_url, settings.key, night)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    assert settings.linkage.model_dir is not None
    model = load_model(current_model_path(settings.linkage.model_dir))
    result.model_version = model.version
    result.model_reason = model.reason
    log.info("linkage model: %s", model.reason)
    # Files with rows (an empty delivery has no staging file), by position in the batch.
    files = [(file_id, path) for file_id, _organisation, path, _night in staged if path]
    partly_linked = ledger.partly_linked()
    held = Held()
    limit = settings.linkage.max_block_comparisons
    con = connect(settings)
    phase = _Phases()
    try:
        with phase("read"):
            load_batch(con, [path for _id, path in files])
            existing, children = fetch_existing(settings.index_url)
            con.register("existing", existing)
            con.register("old_child", children)
            con.register("decision", fetch_decisions(settings.index_url))
            con.register("open_review", open_pairs(settings.index_url))
            _skip_linked_rows(con, [k for k, (file_id, _path) in enumerate(files) if file_id in partly_linked])
            result.records = con.execute("SELECT count(*) FROM batch").fetchall()[0][0]
        the_plan = None
        histogram: dict[str, float] = {}
        if result.records:
            with phase("bound"):
                _split_sets(con)
                register_features(con, "tonight", "new_f")
                register_features(con, "old_records", "old_f")
                held = hold_back_oversize_blocks(con, limit)
        if result.records > held.records:
            with phase("score"):
                result.pairs_scored = score(con, model, settings.linkage.review_threshold)
                histogram = _probability_histogram(con)
            with phase("cluster"):
                decide(con, settings.linkage, model.vetoes_unrelated_given_names)
                result.links_undone = cluster(con)
                assign_ids(con, night)
                the_plan = plan(con, night, result.model_version)
                result.links = con.execute("SELECT count(*) FROM outcome WHERE outcome = 'link'").fetchall()[0][0]
                result.review_items = the_plan["review"].num_rows
    except Exception as exc:
        if (translated := over_budget(exc, settings, night)) is not None:
            raise translated from None  # one line: Splink's error quotes every line of its SQL
        raise
    finally:
        con.close()
    held_ords = sorted({ord_ for _org, ord_, _n in held.by_file})
    held_ids = [files[k][0] for k in held_ords]
    result.records_held, result.files_held = held.records, len(held_ids)
    result.blocks_over_limit, result.largest_block = held.blocks, held.largest_block
    with phase("publish"):
        registry = settings.registry
        rows = (
            [{"code": o.code, "name": o.name, "sector": o.sector} for o in registry.organisations],
            [{"code": a.code, "name": a.name} for a in registry.areas],
        )
        linked_ids = [r[0] for r in staged if r[0] not in held_ids]
        stats = publish(settings.index_url, the_plan, linked_ids, night, rows, held_ids)
    for key in ("children_created", "children_updated", "merges", "splits"):
        setattr(result, key, stats[key])
    log.info("linkage seconds by phase: %s", phase.seconds)
    if held.records:
        log.warning(
            "linkage held back %d record(s) of %d file(s): %d block(s) over %d comparisons",
            held.records, len(held_ids), held.blocks, limit,
        )  # fmt: skip
    described = ledger.describe(held_ids)
    write_held_notices(
        settings,
        night,
        limit,
        {k: described[files[k][0]] for k in held_ords},
        held.by_file,
        held.by_rule,
        {organisation for _id, organisation, _path, _night in staged},
    )
    # For the night summary and the quality report: counts only.
    counts = {f"linkage_{k}": v for k, v in result.as_dict().items() if k != "model_reason"}
    # The thresholds this night decided with, for the report's histogram (settings can change).
    thresholds = {f"linkage_{k}": getattr(settings.linkage, k) for k in ("match_threshold", "review_threshold")}
    put_metrics(settings.index_url, night, {**counts, **histogram, **thresholds})
    log.info("linkage: %s", result.as_dict())
    return result


def _probability_histogram(con: Any) -> dict[str, float]:
    """Scored pairs by match probability, in bins of 0.05 (``linkage_p_bin_BB``: BB/20 up
    to the next bin), for the quality report's histogram. Counts only."""
    rows = con.execute("SELECT least(floor(p * 20)::INT, 19) AS b, count(*) FROM scored GROUP BY b").fetchall()
    return {f"linkage_p_bin_{b:02d}": float(n) for b, n in rows}


class _Phases:
    """Wall time per phase of a night, for the log (where a slow night spends its time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 2)


def _skip_linked_rows(con: Any, partly_linked: list[int]) -> None:
    """Of a file some of whose records were held back on an earlier night (``partly_linked``:
    positions in the batch), read again only the records the index does not hold from its
    night or later: those held back. The rest are linked already, or were since sent again."""
    if partly_linked:
        con.execute(
            "DELETE FROM batch USING existing e WHERE batch.source_key = e.source_key"
            " AND batch.file_ord IN (SELECT unnest($ords)) AND e.last_seen >= batch.night",
            {"ords": partly_linked},
        )


def _split_sets(con: Any) -> None:
    """``tonight``: the records to link now: tonight's, plus every record of a child that a
    person has since said holds two different children (so it can be split). ``old_records``:
    the rest of the index, kept together child by child."""
    from childindex.linkage.features import MINIMAL_COLUMNS

    cols = ", ".join(MINIMAL_COLUMNS)
    con.execute(f"""
        CREATE OR REPLACE TABLE reopened AS
        SELECT DISTINCT a.child_id FROM decision d
        JOIN existing a ON a.source_key = d.key_a JOIN existing b ON b.source_key = d.key_b
        WHERE d.decision = 'non_match' AND a.child_id = b.child_id;
        CREATE OR REPLACE TABLE tonight AS
        SELECT {cols} FROM batch
        UNION ALL
        SELECT {cols} FROM existing e ANTI JOIN batch b USING (source_key)
        WHERE e.child_id IN (SELECT child_id FROM reopened);
        CREATE OR REPLACE TABLE old_records AS
        SELECT e.* FROM existing e ANTI JOIN tonight t USING (source_key);
    """)
