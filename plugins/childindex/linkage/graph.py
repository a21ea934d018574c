"""From linked pairs to children: connected components, conflict checks, stable ids.

Each child already in the index is one node (its records stay together: their pairs were
decided on earlier nights); each of tonight's records is a node of its own. Linked pairs
are edges, and scipy's connected components give tonight's groups.

A group may not hold two different pseudonymised NHS numbers, two different UPNs, or two
records a person said are different children: chains of links (A like B, B like C) can
build such a group although no single link is wrong enough to refuse. In such a group
tonight's links are undone, except people's decisions (undone too only when they alone
conflict), and sent for review instead with a reason that says which conflict it was.

Child ids are stable: an existing id stays with the group holding most of its records;
when groups merge the smallest id survives and the others are recorded in
``child_id_history``; a new group gets an id derived from its smallest source key, so a
rerun gives the same ids.
"""

from __future__ import annotations

from datetime import date
from typing import Any

# Why a link was undone and its pair sent for review (linkage.review.REASONS explains
# each): two NHS numbers or UPNs in its group; a person's "different children" in it; or
# the link was a person's "same child" (undone only when decisions alone conflict).
IDENTIFIERS_CONFLICT = "conflicting_group"
DECISION_CONFLICT = "conflicting_decision"
DECIDED_MATCH_CONFLICTS = "decided_match_conflicts"
REVIEW_REASONS = (IDENTIFIERS_CONFLICT, DECISION_CONFLICT, DECIDED_MATCH_CONFLICTS)

# The identity fields a child row shows, each from its best record that has one (see plan()).
CHILD_IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode")


def components(n_nodes: int, left: Any, right: Any) -> Any:
    """Component label per node for an undirected graph given as edge arrays."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    data = np.ones(len(left), dtype=np.int8)
    graph = coo_matrix((data, (left, right)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    return labels


def cluster(con: Any) -> int:
    """Table ``clustered`` (source_key, old_child_id, in_batch, comp) for every record the
    index holds after tonight, from ``old_records``, ``tonight``, ``outcome`` and
    ``decision``. Links undone by a conflict go into ``outcome`` as reviews. Returns how
    many links were undone."""
    con.execute("""
        CREATE OR REPLACE TABLE node_of AS
        WITH children AS (SELECT DISTINCT child_id FROM old_records),
        child_nodes AS (SELECT child_id, row_number() OVER (ORDER BY child_id) - 1 AS node FROM children)
        SELECT o.source_key, cn.node, o.nhs_key, o.upn_key FROM old_records o JOIN child_nodes cn USING (child_id)
        UNION ALL
        SELECT source_key, (SELECT count(*) FROM children) + row_number() OVER (ORDER BY source_key) - 1,
               nhs_key, upn_key
        FROM tonight;
        CREATE OR REPLACE TABLE edge AS
        SELECT a.node AS l, b.node AS r, o.new_key, o.other_key, o.reason = 'decided' AS decided
        FROM outcome o JOIN node_of a ON a.source_key = o.new_key JOIN node_of b ON b.source_key = o.other_key
        WHERE o.outcome = 'link';
    """)
    undone = 0
    _components_into(con, "node_comp")
    # First undo the model's links in conflicting groups; if people's decisions alone still
    # conflict (they contradict each other), undo those too. Groups are recomputed after
    # every pass that undid a link, so what is clustered below is what the links now say.
    for keep in ("decided OR NOT conflicted", "NOT conflicted"):
        # Each conflicting group, and whether identifiers conflict in it (else only a
        # person's "different children" does): the reviewer is told which.
        con.execute("""
            CREATE OR REPLACE TABLE conflict AS
            WITH rc AS (SELECT n.*, c.comp FROM node_of n JOIN node_comp c USING (node))
            SELECT comp, bool_or(by_identifiers) AS by_identifiers FROM (
                SELECT comp, true AS by_identifiers FROM rc GROUP BY comp
                HAVING count(DISTINCT node) > 1 AND (count(DISTINCT nhs_key) > 1 OR count(DISTINCT upn_key) > 1)
                UNION ALL
                SELECT a.comp, false FROM decision d
                JOIN rc a ON a.source_key = d.key_a JOIN rc b ON b.source_key = d.key_b
                WHERE d.decision = 'non_match' AND a.comp = b.comp AND a.node <> b.node)
            GROUP BY comp;
        """)
        if not con.execute("SELECT count(*) FROM conflict").fetchall()[0][0]:
            break  # no group conflicts: every link stands
        con.execute("""
            CREATE OR REPLACE TABLE edge_judged AS
            SELECT e.*, k.comp IS NOT NULL AS conflicted, coalesce(k.by_identifiers, false) AS by_identifiers
            FROM edge e JOIN node_comp c ON c.node = e.l LEFT JOIN conflict k USING (comp);
        """)
        dropped = con.execute(f"SELECT count(*) FROM edge_judged WHERE NOT ({keep})").fetchall()[0][0]
        if not dropped:
            continue  # only people's decisions hold the group together: judge those next
        undone += dropped
        con.execute(
            f"""
            UPDATE outcome SET outcome = 'review', reason = d.why
            FROM (SELECT new_key, other_key,
                         CASE WHEN decided THEN $decided WHEN by_identifiers THEN $identifiers
                              ELSE $decision END AS why
                  FROM edge_judged WHERE NOT ({keep})) AS d
            WHERE outcome.new_key = d.new_key AND outcome.other_key = d.other_key
            """,
            {"decided": DECIDED_MATCH_CONFLICTS, "identifiers": IDENTIFIERS_CONFLICT, "decision": DECISION_CONFLICT},
        )
        con.execute(
            f"CREATE OR REPLACE TABLE edge AS SELECT l, r, new_key, other_key, decided FROM edge_judged WHERE {keep}"
        )
        _components_into(con, "node_comp")
    con.execute("""
        CREATE OR REPLACE TABLE clustered AS
        SELECT o.source_key, o.child_id AS old_child_id, false AS in_batch, c.comp
        FROM old_records o JOIN node_of n USING (source_key) JOIN node_comp c USING (node)
        UNION ALL
        SELECT t.source_key, e.child_id, t.source_key IN (SELECT source_key FROM batch), c.comp
        FROM tonight t JOIN node_of n USING (source_key) JOIN node_comp c USING (node)
        LEFT JOIN existing e USING (source_key)
    """)
    return undone


def _components_into(con: Any, table: str) -> None:
    import numpy as np
    import pyarrow as pa

    n_nodes = con.execute("SELECT count(DISTINCT node) FROM node_of").fetchall()[0][0]
    edges = con.sql("SELECT l, r FROM edge").to_arrow_table()
    labels = components(n_nodes, edges["l"].to_numpy(), edges["r"].to_numpy()) if n_nodes else np.array([])
    con.register(f"{table}_arrow", pa.table({"node": np.arange(n_nodes), "comp": labels}))
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table}_arrow")
    con.unregister(f"{table}_arrow")


def assign_ids(con: Any, night: date) -> None:
    con.execute(
        """
        -- Each existing id is owned by the group holding most of its records; on a tie, the
        -- group holding most records not re-sent tonight (the id stays with what did not
        -- change), then the lowest group number.
        CREATE OR REPLACE TABLE owner AS
        SELECT old_child_id, arg_max(comp, [n, n_unchanged, -comp]) AS comp FROM (
            SELECT old_child_id, comp, count(*) AS n, count(*) FILTER (WHERE NOT in_batch) AS n_unchanged
            FROM clustered WHERE old_child_id IS NOT NULL GROUP BY ALL) GROUP BY old_child_id;
        -- A new group's id derives from its smallest source key (a rerun gives the same id);
        -- salted with the night when that id is taken (a split can leave a group whose
        -- smallest key named an existing child).
        CREATE OR REPLACE TABLE comp_child AS
        WITH derived AS (
            SELECT c.comp, min(o.old_child_id) AS owned, min(c.source_key) AS first_key
            FROM clustered c LEFT JOIN owner o USING (comp) GROUP BY c.comp),
        plain AS (SELECT *, 'C' || upper(substr(sha256(first_key), 1, 16)) AS fresh FROM derived)
        SELECT comp, coalesce(owned, CASE
            WHEN fresh IN (SELECT child_id FROM old_child) OR fresh IN (SELECT old_child_id FROM owner)
            THEN 'C' || upper(substr(sha256(first_key || ':' || $night::VARCHAR), 1, 16))
            ELSE fresh END) AS child_id
        FROM plain;""",
        {"night": night},
    )
    con.execute("""
        CREATE OR REPLACE TABLE assigned AS
        SELECT c.*, cc.child_id FROM clustered c JOIN comp_child cc USING (comp);
        -- Merges: owned ids that did not survive. Splits: records that left their id's group.
        -- Why: a person's decision, or the model on tonight's records (a merge), or a
        -- record sent again with changed details (a split).
        CREATE OR REPLACE TABLE decided_comp AS
        SELECT DISTINCT c.comp FROM edge e JOIN node_comp c ON c.node = e.l WHERE e.decided;
        CREATE OR REPLACE TABLE history AS
        SELECT DISTINCT o.old_child_id, cc.child_id AS new_child_id,
               CASE WHEN o.comp IN (SELECT comp FROM decided_comp) THEN 'merge:decision'
                    ELSE 'merge:linkage' END AS reason
        FROM owner o JOIN comp_child cc USING (comp) WHERE o.old_child_id <> cc.child_id
        UNION
        SELECT DISTINCT a.old_child_id, a.child_id,
               CASE WHEN a.old_child_id IN (SELECT child_id FROM reopened) THEN 'split:decision'
                    ELSE 'split:changed' END
        FROM assigned a JOIN owner o USING (old_child_id)
        WHERE a.comp <> o.comp;
    """)


def plan(con: Any, night: date, model_version: int) -> dict:
    """Everything publish needs, as Arrow tables."""
    params = {"night": night}
    changed_comps = """
        SELECT DISTINCT comp FROM assigned
        WHERE in_batch OR old_child_id IS DISTINCT FROM child_id
    """
    # The best record: health first, then education, then the newest night.
    order = "(CASE b.sector WHEN 'health' THEN 1 WHEN 'education' THEN 2 ELSE 3 END, -epoch(b.night), b.source_key)"
    best_fields = ", ".join(
        f"arg_min(b.{f}, {order}) FILTER (WHERE b.{f} IS NOT NULL) AS {f}" for f in CHILD_IDENTITY_FIELDS
    )
    child = con.sql(
        f"""
        WITH touched AS ({changed_comps}),
        best AS (
            -- Each field from the best record that has it: a sensitive record has no postcode,
            -- and a record may be staged with a blank (or set-aside) identity field.
            SELECT a.comp, {best_fields}
            FROM assigned a JOIN batch b USING (source_key) WHERE a.in_batch GROUP BY a.comp),
        prev AS (
            SELECT a.comp, arg_max(oc, oc.last_seen) AS oc, min(oc.first_seen) AS first_seen,
                   max(oc.last_seen) AS last_seen
            FROM assigned a JOIN old_child oc ON oc.child_id = a.old_child_id GROUP BY a.comp)
        SELECT cc.child_id,
               coalesce(best.given_name, prev.oc.given_name) AS given_name,
               coalesce(best.family_name, prev.oc.family_name) AS family_name,
               coalesce(best.date_of_birth, prev.oc.date_of_birth) AS date_of_birth,
               coalesce(best.sex, prev.oc.sex) AS sex,
               coalesce(best.postcode, prev.oc.postcode) AS postcode,
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
        SELECT b.source_key, b.organisation, a.child_id, b.nhs_key, b.upn_key, b.match_key,
               -- A file staged before references existed carries none: keep the index's.
               coalesce(b.local_ref, e.local_ref) AS local_ref,
               coalesce(e.first_seen, b.night) AS first_seen, b.night AS last_seen,
               b.given_name, b.family_name, b.date_of_birth, b.sex, b.postcode
        FROM batch b JOIN assigned a USING (source_key) LEFT JOIN existing e USING (source_key)
        ORDER BY b.source_key
    """).to_arrow_table()
    involvement = con.sql("""
        SELECT b.source_key, a.child_id, b.organisation, b.sector, b.area, b.service, b.contact_route,
               b.involvement_start AS start_date, b.involvement_end AS end_date, b.night AS last_seen
        FROM batch b JOIN assigned a USING (source_key) ORDER BY b.source_key
    """).to_arrow_table()
    remap = con.sql("""
        SELECT source_key, child_id FROM assigned
        WHERE NOT in_batch AND old_child_id IS DISTINCT FROM child_id ORDER BY source_key
    """).to_arrow_table()
    # For the notices stage: every record that came tonight or whose child changed.
    pending = con.sql(
        """
        SELECT source_key, $night::DATE AS night FROM assigned
        WHERE in_batch OR old_child_id IS DISTINCT FROM child_id ORDER BY source_key
    """,
        params=params,
    ).to_arrow_table()
    history = con.sql("SELECT * FROM history ORDER BY old_child_id, new_child_id").to_arrow_table()
    retired = con.sql("""
        SELECT DISTINCT old_child_id AS child_id FROM assigned WHERE old_child_id IS NOT NULL
        EXCEPT SELECT child_id FROM comp_child
    """).to_arrow_table()
    # Pairs for a person to look at: the three likeliest per record, and only while the
    # two records are still in different children. A pair once (a person's decision may be
    # in ``outcome`` both ways round), and not again while it waits in the queue already
    # (``open_review``; tonight's records' open items are replaced by tonight's).
    review = con.sql(
        """
        WITH pair AS (
            SELECT o.* FROM outcome o
            JOIN assigned a ON a.source_key = o.new_key JOIN assigned b ON b.source_key = o.other_key
            WHERE o.outcome = 'review' AND a.child_id <> b.child_id
            QUALIFY row_number() OVER (PARTITION BY least(o.new_key, o.other_key), greatest(o.new_key, o.other_key)
                                       ORDER BY o.p DESC NULLS LAST, o.new_key) = 1),
        waiting AS (
            SELECT least(new_key, other_key) AS key_a, greatest(new_key, other_key) AS key_b FROM open_review
            WHERE new_key NOT IN (SELECT source_key FROM tonight) AND other_key NOT IN (SELECT source_key FROM tonight))
        SELECT $night::DATE AS night, new_key, other_key, p AS match_probability, reason,
               $version::INTEGER AS model_version, 'open' AS status
        FROM pair ANTI JOIN waiting w ON w.key_a = least(new_key, other_key) AND w.key_b = greatest(new_key, other_key)
        QUALIFY row_number() OVER (PARTITION BY new_key ORDER BY p DESC NULLS LAST, other_key) <= 3
        ORDER BY new_key, other_key
    """,
        params={"night": night, "version": model_version},
    ).to_arrow_table()
    return {
        "child": child,
        "source_record": records,
        "involvement": involvement,
        "remap": remap,
        "history": history,
        "retired": retired,
        "review": review,
        "notice_pending": pending,
        "tonight_keys": con.sql("SELECT source_key FROM tonight ORDER BY 1").to_arrow_table(),
    }
