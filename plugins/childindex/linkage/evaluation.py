"""Linkage accuracy against the synthetic generator's ground truth.

Only for synthetic data: the truth files map (organisation, local id) to the generator's
person id. Local ids are pseudonymised with the same keyed HMAC as intake, so truth joins the
index on ``source_key`` and no identifier leaves the database in clear.

Pairwise figures count pairs of records: true positive pairs share both a child id and a
person id. B-cubed precision and recall average, per record, the overlap of its predicted
and true clusters. Cross-authority recall counts only the true pairs whose two records are
in different authority areas (as the index places them): the children who moved, the case
the index exists for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from childindex.settings import Settings


def accuracy(settings: Settings, truth_dir: Path | None = None) -> dict[str, float] | None:
    """Precision, recall, F1 and B-cubed of the index, or None without ground truth."""
    import duckdb

    from childindex.index.db import engine_for
    from childindex.index.models import Involvement, SourceRecord
    from childindex.index.store import fetch_arrow

    truth_dir = truth_dir or settings.ground_truth_dir
    if truth_dir is None or not has_truth(truth_dir):
        return None
    import pyarrow as pa

    schema = pa.schema([("source_key", pa.string()), ("child_id", pa.string()), ("area", pa.string())])
    query = select(SourceRecord.source_key, SourceRecord.child_id, Involvement.area).join(
        Involvement, Involvement.source_key == SourceRecord.source_key, isouter=True
    )
    with engine_for(settings.index_url).connect() as conn:
        index = fetch_arrow(conn, query, schema)
    con = duckdb.connect()
    try:
        con.register("idx", index)
        load_truth(con, settings.key, Path(truth_dir))
        return _scores(con)
    finally:
        con.close()


def has_truth(truth_dir: Path | None) -> bool:
    return truth_dir is not None and any(Path(truth_dir).glob("night=*/truth.parquet"))


def load_truth(con: Any, key: bytes, truth_dir: Path) -> None:
    """DuckDB table ``truth`` (source_key, person_id) from the generator's truth files."""
    from childindex.staging.pseudonymise import hmac_sql_of, key_params

    # The HMAC domain is each row's organisation's (staging.pseudonymise.local_id_domain).
    key_expr = hmac_sql_of("local_id", "('local_id:' || organisation)", "$ipad", "$opad")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE truth AS
        SELECT DISTINCT {key_expr} AS source_key, person_id
        FROM read_parquet($glob) t
    """,
        {**key_params(key), "glob": str(truth_dir / "night=*" / "truth.parquet")},
    )


def _scores(con: Any) -> dict[str, float]:
    con.execute(
        "CREATE TABLE j AS SELECT i.source_key, i.child_id, i.area, t.person_id "
        "FROM idx i JOIN truth t USING (source_key)"
    )
    cross = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE a.child_id = b.child_id),
               (SELECT count(*) FROM (SELECT person_id FROM j GROUP BY 1 HAVING count(DISTINCT area) > 1))
        FROM j a JOIN j b ON a.person_id = b.person_id AND a.source_key < b.source_key
        WHERE a.area <> b.area  -- records of an unknown area (before the registry) are left out
    """).fetchall()[0]
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
        "cross_authority_pairs_true": float(cross[0]),
        "cross_authority_recall": cross[1] / cross[0] if cross[0] else 1.0,
        "cross_authority_children": float(cross[2]),
    }
