"""Who must be told what tonight, as set operations in DuckDB.

Input tables (from the index, :mod:`.night`): ``rec`` (the records of every child touched
tonight, and of every record a told row names, with their involvement), ``pending`` (keys
of records that came tonight or changed child), ``told`` (what each record's organisation
was told before), ``org`` and ``area`` (names), ``ref_key`` (each recipient's subkeys).

An *item* is one organisation's record ``x`` told of another organisation's involvement
``y`` on the same child. On a child touched tonight, every pair of current involvements of
two organisations that is not yet told is new; each organisation with a new item gets one
notice listing every other current involvement on the child (marked new or known), and
every record of its own there (its own references). A told item whose two records are
no longer one child (a split: a person's decision, or a record re-sent with other details)
is withdrawn: its recipient gets a retraction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from childindex.staging.reference import local_id_sql
from childindex.whitelist import SENSITIVE_SERVICE

NOTICE_SCHEMA = "childindex-notices/1"
SENSITIVE_LABEL = "a sensitive service"  # all a recipient learns of a shielded involvement


def compose(con: Any, night: date, lookback_days: int, sensitive: str) -> None:
    """Tables ``new_item`` (recipient_key, other_key), ``withdrawn`` (recipient_key,
    other_key), ``notice`` (one row per organisation, child and kind, with its references and
    involvements) and ``unreferenced`` (recipients without a reference yet)."""
    params = {
        "night": night,
        "lookback": lookback_days,
        "withhold": sensitive == "withhold",
        "sensitive_service": SENSITIVE_SERVICE,
    }
    run_script(
        con,
        """
        -- Current: the involvement is open, or ended within the look-back (CP-IS: 12 months).
        CREATE OR REPLACE TABLE inv AS
        SELECT *, service IS NOT NULL
                  AND (end_date IS NULL OR end_date >= $night::DATE - $lookback::INTEGER) AS current,
               service = $sensitive_service AS sensitive
        FROM rec;
        CREATE OR REPLACE TABLE touched AS
        SELECT DISTINCT i.child_id FROM inv i JOIN pending p USING (source_key);
        -- Every item a touched child holds now: x's organisation may be told of y.
        CREATE OR REPLACE TABLE item AS
        SELECT x.source_key AS recipient_key, y.source_key AS other_key, x.child_id, x.organisation
        FROM inv x JOIN inv y ON x.child_id = y.child_id AND x.organisation <> y.organisation
        WHERE x.child_id IN (SELECT child_id FROM touched) AND x.current AND y.current
          AND NOT (y.sensitive AND $withhold);
        CREATE OR REPLACE TABLE fresh AS
        SELECT i.* FROM item i ANTI JOIN told t USING (recipient_key, other_key);
        -- A recipient needs its own reference: a record staged before references existed has
        -- none until its organisation sends it again (counted, told then).
        CREATE OR REPLACE TABLE recipient AS
        SELECT DISTINCT f.organisation, f.child_id FROM fresh f;
        CREATE OR REPLACE TABLE unreferenced AS
        SELECT r.* FROM recipient r WHERE NOT EXISTS (
            SELECT 1 FROM inv x WHERE x.child_id = r.child_id AND x.organisation = r.organisation
              AND x.current AND x.local_ref IS NOT NULL);
        -- Told tonight: each referenced record of a notified organisation, of every
        -- involvement its notice lists that it had not been told of.
        CREATE OR REPLACE TABLE new_item AS
        SELECT DISTINCT i.recipient_key, i.other_key FROM fresh i
        JOIN (SELECT * FROM recipient ANTI JOIN unreferenced USING (organisation, child_id)) r
            USING (organisation, child_id)
        JOIN inv x ON x.source_key = i.recipient_key
        WHERE x.local_ref IS NOT NULL;
        -- Withdrawn: told items whose records are no longer one child.
        CREATE OR REPLACE TABLE withdrawn AS
        SELECT t.recipient_key, t.other_key, x.child_id, x.organisation
        FROM told t JOIN inv x ON x.source_key = t.recipient_key JOIN inv y ON y.source_key = t.other_key
        WHERE x.child_id <> y.child_id AND x.local_ref IS NOT NULL;
        """,
        params,
    )
    # One row per notice: its organisation's references, and the involvements it names.
    involvement = f"""{{
        'new': NOT known,
        'sector': CASE WHEN y.sensitive THEN NULL ELSE y.sector END,
        'organisation_code': CASE WHEN y.sensitive THEN NULL ELSE y.organisation END,
        'organisation_name': CASE WHEN y.sensitive THEN NULL ELSE o.name END,
        'area_code': CASE WHEN y.sensitive THEN NULL ELSE y.area END,
        'area_name': CASE WHEN y.sensitive THEN NULL ELSE a.name END,
        'service': CASE WHEN y.sensitive THEN '{SENSITIVE_LABEL}' ELSE y.service END,
        'contact_route': y.contact_route,
        'start_date': CASE WHEN y.sensitive THEN NULL ELSE y.start_date END,
        'end_date': CASE WHEN y.sensitive THEN NULL ELSE y.end_date END
    }}"""
    order = "y.sensitive, y.sector, y.organisation, y.service, y.start_date, y.contact_route, y.source_key"
    run_script(
        con,
        f"""
        CREATE OR REPLACE TABLE own_ref AS
        SELECT x.organisation, x.child_id, x.source_key, x.current,
               {local_id_sql("x.local_ref", "k")} AS reference
        FROM inv x JOIN ref_key k USING (organisation) WHERE x.local_ref IS NOT NULL;
        CREATE OR REPLACE TABLE notice AS
        WITH told_notice AS (
            SELECT DISTINCT i.organisation, i.child_id, i.other_key,
                   EXISTS (SELECT 1 FROM told t JOIN inv x2 ON x2.source_key = t.recipient_key
                           WHERE t.other_key = i.other_key AND x2.organisation = i.organisation
                             AND x2.child_id = i.child_id) AS known
            FROM item i JOIN (SELECT DISTINCT organisation, child_id FROM new_item n
                              JOIN inv x ON x.source_key = n.recipient_key) USING (organisation, child_id)),
        parts AS (
            SELECT 'notice' AS kind, organisation, child_id, other_key, known FROM told_notice
            UNION ALL
            SELECT DISTINCT 'retraction', organisation, child_id, other_key, true FROM withdrawn),
        refs AS (
            SELECT p.kind, p.organisation, p.child_id, list(DISTINCT r.reference ORDER BY r.reference) AS refs
            FROM (SELECT DISTINCT kind, organisation, child_id FROM parts) p
            JOIN own_ref r USING (organisation, child_id)
            WHERE r.reference IS NOT NULL AND (
                (p.kind = 'notice' AND r.current)
                OR (p.kind = 'retraction' AND r.source_key IN (
                    SELECT w.recipient_key FROM withdrawn w WHERE w.organisation = p.organisation
                      AND w.child_id = p.child_id)))
            GROUP BY ALL)
        SELECT p.kind, p.organisation, p.child_id,
               substr(sha256($night::VARCHAR || '|' || p.organisation || '|' || p.child_id || '|' || p.kind), 1, 20)
                   AS notice_id,
               any_value(refs.refs) AS refs,
               list({involvement} ORDER BY {order}) AS involvements,
               count(*) FILTER (WHERE NOT p.known) AS new_involvements
        FROM parts p JOIN refs USING (kind, organisation, child_id)
        JOIN inv y ON y.source_key = p.other_key
        LEFT JOIN org o ON o.code = y.organisation LEFT JOIN area a ON a.code = y.area
        GROUP BY p.kind, p.organisation, p.child_id
        """,
        {"night": night},
    )


def run_script(con: Any, script: str, params: dict[str, Any]) -> None:
    """Each statement of ``script`` with the parameters it names (DuckDB binds parameters
    for one statement at a time)."""
    for statement in (s.strip() for s in script.split(";")):
        if statement:
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
