"""Training the linkage model on the records the index holds (and any staged tonight).

Run by ``childindex train`` and the ``train_linkage_model`` DAG, never as part of a night:
a model changes only when someone trains one, and every night records which version
linked it. Needs no ground truth: u comes from random pairs, m from EM.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from childindex.errors import NotEnoughRecords
from childindex.settings import Settings

log = logging.getLogger(__name__)

MIN_RECORDS = 500  # fewer, and EM has too few pairs to learn from (each session also counts its own)


def train_model(settings: Settings, seed: int = 42) -> tuple[Path, dict[str, Any]]:
    """Train on the index's records plus staged ones; save the next model version."""
    from childindex.index.ledger import Ledger
    from childindex.index.store import fetch_existing
    from childindex.linkage.batch import connect, load_batch, over_budget
    from childindex.linkage.features import MINIMAL_COLUMNS, register_features
    from childindex.linkage.model import save_model, train

    settings.work_dir.mkdir(parents=True, exist_ok=True)
    con = connect(settings)
    try:
        existing, _children = fetch_existing(settings.index_url)
        con.register("existing", existing)
        load_batch(con, [path for _id, _organisation, path, _night in Ledger(settings.index_url).staged() if path])
        cols = ", ".join(MINIMAL_COLUMNS)
        # A staged record replaces its version in the index; records the index holds
        # without identity fields (loaded before they were kept) cannot be compared.
        con.execute(f"""
            CREATE TABLE training_records AS
            SELECT {cols} FROM batch
            UNION ALL
            SELECT {cols} FROM existing e ANTI JOIN batch b USING (source_key) WHERE e.given_name IS NOT NULL
        """)
        register_features(con, "training_records", "training_features")
        n = con.execute("SELECT count(*) FROM training_features").fetchall()[0][0]
        if n < MIN_RECORDS:
            raise NotEnoughRecords(f"{n} records to train on; at least {MIN_RECORDS} are needed")
        model, report = train(con, "training_features", max_pairs_for_u=settings.linkage.training_max_pairs, seed=seed)
    except Exception as exc:
        if (translated := over_budget(exc, settings)) is not None:
            raise translated from None  # one line: Splink's error quotes every line of its SQL
        raise
    finally:
        con.close()
    assert settings.linkage.model_dir is not None
    path = save_model(model, settings.linkage.model_dir, report)
    log.info("linkage model trained: %s", report.as_dict())
    return path, report.as_dict()
