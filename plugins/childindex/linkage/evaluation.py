"""Linkage accuracy against the synthetic generator's ground truth.

Only for synthetic data: the truth files map (agency, local id) to the generator's person
id. Local ids are pseudonymised with the same keyed HMAC as intake, so truth joins the
index on ``source_key`` and no identifier leaves the database in clear.

Pairwise figures count pairs of records: true positive pairs share both a child id and a
person id. B-cubed precision and recall average, per record, the overlap of its predicted
and true clusters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from childindex.settings import Settings


def accuracy(settings: Settings, truth_dir: Path | None = None) -> dict[str, float] | None:
    """Precision, recall, F1 and B-cubed of the index, or None without ground truth."""
    import duckdb

    from childindex.contracts.contract import AGENCIES
    from childindex.index.db import engine_for
    from childindex.index.models import SourceRecord
    from childindex.index.store import fetch_arrow
    from childindex.staging.pseudonymise import hmac_sql, key_params

    truth_dir = truth_dir or settings.ground_truth_dir
    if truth_dir is None or not any(Path(truth_dir).glob("night=*/truth.parquet")):
        return None
    import pyarrow as pa

    schema = pa.schema([("source_key", pa.string()), ("child_id", pa.string())])
    with engine_for(settings.index_url).connect() as conn:
        index = fetch_arrow(conn, select(SourceRecord.source_key, SourceRecord.child_id), schema)
    con = duckdb.connect()
    try:
        con.register("idx", index)
        domain_case = " ".join(f"WHEN '{a}' THEN $d_{a}" for a in AGENCIES)
        params = {**key_params(settings.key), **{f"d_{a}": f"local_id:{a}" for a in AGENCIES}}
        # The HMAC domain is per agency: pick it with a CASE over bound parameters.
        key_expr = hmac_sql("local_id", "dom").replace("$dom", f"(CASE agency {domain_case} END)")
        con.execute(
            f"""
            CREATE TABLE truth AS
            SELECT DISTINCT {key_expr} AS source_key, person_id
            FROM read_parquet($glob) t
        """,
            {**params, "glob": str(Path(truth_dir) / "night=*" / "truth.parquet")},
        )
        return _scores(con)
    finally:
        con.close()


def _scores(con: Any) -> dict[str, float]:
    con.execute(
        "CREATE TABLE j AS SELECT i.source_key, i.child_id, t.person_id FROM idx i JOIN truth t USING (source_key)"
    )
    row = con.execute("""
        WITH pc AS (SELECT count(*) n FROM j GROUP BY child_id),
             tc AS (SELECT count(*) n FROM j GROUP BY person_id),
             cell AS (SELECT count(*) n FROM j GROUP BY child_id, person_id)
        SELECT (SELECT coalesce(sum(n*(n-1)/2), 0) FROM pc),
               (SELECT coalesce(sum(n*(n-1)/2), 0) FROM tc),
               (SELECT coalesce(sum(n*(n-1)/2), 0) FROM cell),
               (SELECT count(*) FROM j),
               (SELECT count(DISTINCT child_id) FROM j),
               (SELECT count(DISTINCT person_id) FROM j)
    """).fetchall()[0]
    predicted, true, tp, records, children, persons = (float(x) for x in row)
    b3 = con.execute("""
        WITH cell AS (SELECT child_id, person_id, count(*) n FROM j GROUP BY ALL),
             c AS (SELECT child_id, sum(n) n FROM cell GROUP BY ALL),
             p AS (SELECT person_id, sum(n) n FROM cell GROUP BY ALL)
        SELECT sum(cell.n * cell.n / c.n), sum(cell.n * cell.n / p.n)
        FROM cell JOIN c USING (child_id) JOIN p USING (person_id)
    """).fetchall()[0]
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    bp = (b3[0] or 0) / records if records else 1.0
    br = (b3[1] or 0) / records if records else 1.0
    return {
        "pairs_predicted": predicted,
        "pairs_true": true,
        "pairs_true_positive": tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "records_evaluated": records,
        "children_predicted": children,
        "children_true": persons,
    }
