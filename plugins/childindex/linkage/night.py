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

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def link_pending(settings: Settings, night: date) -> LinkResult:
    """Link every staged-but-unlinked file into the index in one transaction."""
    from childindex.index.ledger import Ledger
    from childindex.index.store import fetch_decisions, fetch_existing, publish, put_metrics
    from childindex.keys.epochs import check_key
    from childindex.linkage.batch import connect, load_batch
    from childindex.linkage.graph import assign_ids, cluster, plan
    from childindex.linkage.model import current_model_path, load_model
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
    con = connect(settings)
    phase = _Phases()
    try:
        with phase("read"):
            load_batch(con, [path for _id, _organisation, path, _night in staged if path])
            result.records = con.execute("SELECT count(*) FROM batch").fetchall()[0][0]
            existing, children = fetch_existing(settings.index_url)
            con.register("existing", existing)
            con.register("old_child", children)
            con.register("decision", fetch_decisions(settings.index_url))
        the_plan = None
        histogram: dict[str, float] = {}
        if result.records:
            with phase("score"):
                _split_sets(con)
                result.pairs_scored = score(con, model, settings.linkage.review_threshold)
                histogram = _probability_histogram(con)
            with phase("cluster"):
                decide(con, settings.linkage, model.vetoes_unrelated_given_names)
                result.links_undone = cluster(con)
                assign_ids(con, night)
                the_plan = plan(con, night, result.model_version)
                result.links = con.execute("SELECT count(*) FROM outcome WHERE outcome = 'link'").fetchall()[0][0]
                result.review_items = the_plan["review"].num_rows
        with phase("publish"):
            registry = settings.registry
            rows = (
                [{"code": o.code, "name": o.name, "sector": o.sector} for o in registry.organisations],
                [{"code": a.code, "name": a.name} for a in registry.areas],
            )
            stats = publish(settings.index_url, the_plan, [r[0] for r in staged], night, rows)
        for key in ("children_created", "children_updated", "merges", "splits"):
            setattr(result, key, stats[key])
    finally:
        con.close()
    log.info("linkage seconds by phase: %s", phase.seconds)
    # For the night summary and the quality report: counts only.
    counts = {f"linkage_{k}": v for k, v in result.as_dict().items() if k != "model_reason"}
    put_metrics(settings.index_url, night, {**counts, **histogram})
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
