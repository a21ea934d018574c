"""Deterministic linkage of staged records against the index, with stable child ids.

Rules, in order (exact matches on keyed HMACs, so no identifier is ever seen in clear):

1. records sharing a pseudonymised NHS number or UPN are the same child;
2. groups from rule 1 sharing normalised given name + family name + date of birth are the
   same child, unless their identifiers conflict (both carry NHS numbers, or both UPNs,
   and none is shared) or the name+date key is ambiguous between conflicting groups.

Connected components are found with scipy's sparse graph routines over integer ids built
in DuckDB: set operations throughout, no loop per record. Child ids are stable: an
existing id stays with the group holding most of its records; when groups merge the
smallest id survives and the others are recorded in ``child_id_history``; a new group gets
an id derived from its smallest source key, so a rerun gives the same ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from childindex.settings import Settings

log = logging.getLogger(__name__)

AGENCY_PRIORITY = {"health": 1, "education": 2, "social_care": 3}


@dataclass
class LinkResult:
    files: int = 0
    records: int = 0
    children_created: int = 0
    children_updated: int = 0
    merges: int = 0
    splits: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def link_pending(settings: Settings, night: date) -> LinkResult:
    """Link every staged-but-unlinked file into the index in one transaction."""
    import duckdb

    from childindex.index.ledger import Ledger
    from childindex.index.store import fetch_existing, publish

    ledger = Ledger(settings.index_url)
    staged = ledger.staged()
    result = LinkResult(files=len(staged))
    if not staged:
        return result
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "temp_directory": str(settings.work_dir)})
    try:
        files = [(i, path) for i, (_id, _agency, path, _night) in enumerate(staged) if path]
        con.register("file_order", _arrow({"file_ord": [i for i, _ in files], "filename": [p for _, p in files]}))
        if files:
            con.execute(
                "CREATE TABLE batch AS SELECT * EXCLUDE (rn, file_ord, filename) FROM ("
                " SELECT s.*, f.file_ord, row_number() OVER (PARTITION BY s.source_key"
                "   ORDER BY s.night DESC, f.file_ord DESC, s.source_row DESC) AS rn"
                " FROM read_parquet($paths, filename = true) s JOIN file_order f USING (filename))"
                " WHERE rn = 1",
                {"paths": [p for _, p in files]},
            )
        else:  # only empty deliveries: nothing to link, but they are still marked linked
            con.execute("CREATE TABLE batch (source_key VARCHAR)")
        result.records = con.execute("SELECT count(*) FROM batch").fetchall()[0][0]
        existing, children = fetch_existing(settings.index_url)
        con.register("existing", existing)
        con.register("old_child", children)
        if result.records:
            _cluster(con)
            _assign_ids(con, night)
        plan = _plan(con, night) if result.records else None
        stats = publish(settings.index_url, plan, [r[0] for r in staged], night)
        result.children_created = stats["children_created"]
        result.children_updated = stats["children_updated"]
        result.merges = stats["merges"]
        result.splits = stats["splits"]
    finally:
        con.close()
    log.info("linkage: %s", result.as_dict())
    return result


def _arrow(columns: dict):  # noqa: ANN202
    import pyarrow as pa

    return pa.table(columns)


def _components(n_nodes: int, left, right):  # noqa: ANN001, ANN202 - numpy arrays
    """Component label per node for an undirected graph given as edge arrays."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    data = np.ones(len(left), dtype=np.int8)
    graph = coo_matrix((data, (left, right)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    return labels


def _cluster(con) -> None:  # noqa: ANN001
    import numpy as np
    import pyarrow as pa

    # Every record the index will hold after tonight: existing ones not re-sent, plus the batch.
    con.execute("""
        CREATE TABLE nodes AS
        SELECT row_number() OVER (ORDER BY source_key) - 1 AS node, * FROM (
            SELECT e.source_key, e.nhs_key, e.upn_key, e.match_key, e.child_id AS old_child_id,
                   false AS in_batch
            FROM existing e ANTI JOIN batch b USING (source_key)
            UNION ALL
            SELECT b.source_key, b.nhs_key, b.upn_key, b.match_key, e.child_id, true
            FROM batch b LEFT JOIN existing e USING (source_key))
    """)
    n_nodes = con.execute("SELECT count(*) FROM nodes").fetchall()[0][0]
    # Rule 1: nodes sharing an identifier key. Bipartite graph: nodes, then one vertex per key.
    edges = con.sql(
        """
        WITH k AS (
            SELECT node, 'n' || nhs_key AS key FROM nodes WHERE nhs_key IS NOT NULL
            UNION ALL SELECT node, 'u' || upn_key FROM nodes WHERE upn_key IS NOT NULL)
        SELECT node, dense_rank() OVER (ORDER BY key) - 1 + $n AS kv FROM k
    """,
        params={"n": n_nodes},
    ).to_arrow_table()
    n_keys = con.execute(
        "SELECT count(DISTINCT key) FROM (SELECT nhs_key AS key FROM nodes UNION ALL "
        "SELECT upn_key FROM nodes) WHERE key IS NOT NULL"
    ).fetchall()[0][0]
    labels = _components(n_nodes + n_keys + 1, edges["node"].to_numpy(), edges["kv"].to_numpy())
    con.register("c1", pa.table({"node": np.arange(n_nodes), "comp1": labels[:n_nodes]}))
    con.execute("CREATE TABLE n1 AS SELECT n.*, c1.comp1 FROM nodes n JOIN c1 USING (node)")
    # Rule 2: groups sharing name + date of birth, unless identifiers conflict.
    con.execute("""
        CREATE TABLE comp_ids AS
        SELECT comp1, list(DISTINCT nhs_key) FILTER (WHERE nhs_key IS NOT NULL) AS nhs,
               list(DISTINCT upn_key) FILTER (WHERE upn_key IS NOT NULL) AS upn
        FROM n1 GROUP BY comp1
    """)
    con.execute("""
        CREATE TABLE mk AS SELECT DISTINCT match_key, comp1 FROM n1;
        CREATE TABLE ambiguous AS
        SELECT DISTINCT a.match_key FROM mk a JOIN mk b ON a.match_key = b.match_key AND a.comp1 < b.comp1
        JOIN comp_ids ia ON ia.comp1 = a.comp1 JOIN comp_ids ib ON ib.comp1 = b.comp1
        WHERE (len(ia.nhs) > 0 AND len(ib.nhs) > 0 AND NOT list_has_any(ia.nhs, ib.nhs))
           OR (len(ia.upn) > 0 AND len(ib.upn) > 0 AND NOT list_has_any(ia.upn, ib.upn));
    """)
    n_comp = int(labels[:n_nodes].max()) + 1 if n_nodes else 0
    edges2 = con.sql(
        """
        SELECT comp1, dense_rank() OVER (ORDER BY match_key) - 1 + $n AS kv
        FROM mk ANTI JOIN ambiguous USING (match_key)
    """,
        params={"n": n_comp},
    ).to_arrow_table()
    n_mk = con.execute("SELECT count(DISTINCT match_key) FROM mk").fetchall()[0][0]
    labels2 = _components(n_comp + n_mk + 1, edges2["comp1"].to_numpy(), edges2["kv"].to_numpy())
    con.register("c2", pa.table({"comp1": np.arange(n_comp), "comp": labels2[:n_comp]}))
    con.execute("CREATE TABLE clustered AS SELECT n1.*, c2.comp FROM n1 JOIN c2 USING (comp1)")


def _assign_ids(con, night: date) -> None:  # noqa: ANN001
    con.execute("""
        -- Each existing id is owned by the group holding most of its records.
        CREATE TABLE owner AS
        SELECT old_child_id, arg_max(comp, n * 1e9 - comp) AS comp FROM (
            SELECT old_child_id, comp, count(*) AS n FROM clustered
            WHERE old_child_id IS NOT NULL GROUP BY ALL) GROUP BY old_child_id;
        CREATE TABLE comp_child AS
        SELECT c.comp,
               coalesce(min(o.old_child_id),
                        'C' || upper(substr(sha256(min(c.source_key)), 1, 16))) AS child_id,
               count(DISTINCT o.old_child_id) AS owned
        FROM clustered c LEFT JOIN owner o USING (comp) GROUP BY c.comp;
        CREATE TABLE assigned AS
        SELECT c.*, cc.child_id FROM clustered c JOIN comp_child cc USING (comp);
        -- Merges: owned ids that did not survive. Splits: records that left their id's group.
        CREATE TABLE history AS
        SELECT DISTINCT o.old_child_id, cc.child_id AS new_child_id, 'merge' AS reason
        FROM owner o JOIN comp_child cc USING (comp) WHERE o.old_child_id <> cc.child_id
        UNION
        SELECT DISTINCT a.old_child_id, a.child_id, 'split'
        FROM assigned a JOIN owner o USING (old_child_id)
        WHERE a.comp <> o.comp;
    """)


def _plan(con, night: date) -> dict:  # noqa: ANN001
    """Everything publish needs, as Arrow tables."""
    params = {"night": night}
    changed_comps = """
        SELECT DISTINCT comp FROM assigned
        WHERE in_batch OR old_child_id IS DISTINCT FROM child_id
    """
    child = con.sql(
        f"""
        WITH touched AS ({changed_comps}),
        best AS (
            SELECT a.comp, arg_min(b, (CASE b.agency WHEN 'health' THEN 1 WHEN 'education' THEN 2
                                       ELSE 3 END, -epoch(b.night), b.source_key)) AS b
            FROM assigned a JOIN batch b USING (source_key) WHERE a.in_batch GROUP BY a.comp),
        prev AS (
            SELECT a.comp, arg_max(oc, oc.last_seen) AS oc, min(oc.first_seen) AS first_seen,
                   max(oc.last_seen) AS last_seen
            FROM assigned a JOIN old_child oc ON oc.child_id = a.old_child_id GROUP BY a.comp)
        SELECT cc.child_id,
               coalesce(best.b.given_name, prev.oc.given_name) AS given_name,
               coalesce(best.b.family_name, prev.oc.family_name) AS family_name,
               coalesce(best.b.date_of_birth, prev.oc.date_of_birth) AS date_of_birth,
               coalesce(best.b.sex, prev.oc.sex) AS sex,
               coalesce(best.b.postcode, prev.oc.postcode) AS postcode,
               least(coalesce(prev.first_seen, $night::DATE), $night::DATE) AS first_seen,
               greatest(coalesce(prev.last_seen, $night::DATE), CASE WHEN best.comp IS NULL
                        THEN coalesce(prev.last_seen, $night::DATE) ELSE $night::DATE END) AS last_seen,
               prev.comp IS NULL AS is_new,
               cc.child_id IN (SELECT child_id FROM old_child) AS in_index
        FROM touched t JOIN comp_child cc USING (comp)
        LEFT JOIN best USING (comp) LEFT JOIN prev USING (comp)
        ORDER BY cc.child_id
    """,
        params=params,
    ).to_arrow_table()
    records = con.sql("""
        SELECT b.source_key, b.agency, a.child_id, b.nhs_key, b.upn_key, b.match_key,
               coalesce(e.first_seen, b.night) AS first_seen, b.night AS last_seen
        FROM batch b JOIN assigned a USING (source_key) LEFT JOIN existing e USING (source_key)
        ORDER BY b.source_key
    """).to_arrow_table()
    involvement = con.sql("""
        SELECT b.source_key, a.child_id, b.agency, b.service, b.contact_route,
               b.involvement_start AS start_date, b.involvement_end AS end_date, b.night AS last_seen
        FROM batch b JOIN assigned a USING (source_key) ORDER BY b.source_key
    """).to_arrow_table()
    remap = con.sql("""
        SELECT source_key, child_id FROM assigned
        WHERE NOT in_batch AND old_child_id IS DISTINCT FROM child_id ORDER BY source_key
    """).to_arrow_table()
    history = con.sql("SELECT * FROM history ORDER BY old_child_id, new_child_id").to_arrow_table()
    retired = con.sql("""
        SELECT DISTINCT old_child_id AS child_id FROM assigned WHERE old_child_id IS NOT NULL
        EXCEPT SELECT child_id FROM comp_child
    """).to_arrow_table()
    return {
        "child": child,
        "source_record": records,
        "involvement": involvement,
        "remap": remap,
        "history": history,
        "retired": retired,
    }
