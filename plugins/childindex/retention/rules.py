"""The row rules: which rows each retention rule deletes, as fixed SQL predicates.

One list of (table, predicate) per rule, run in order in one transaction per rule. Table
names and predicates are fixed strings here; the cutoff is always a bound parameter.
"""

from __future__ import annotations

_ORPHANED_DECISIONS = (
    "link_decision",
    "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_a) "
    "OR NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = link_decision.key_b)",
)


# What a record's organisation was told, and the notices stage's work list: keys only, and
# only while the records they name exist (no foreign keys: a re-sent record is replaced).
_ORPHANED_TOLD = (
    "notice_told",
    "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = notice_told.recipient_key) "
    "OR NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = notice_told.other_key)",
)
_ORPHANED_PENDING = (
    "notice_pending",
    "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.source_key = notice_pending.source_key)",
)


def _records_of(where: str) -> list[tuple[str, str]]:
    """Delete statements for every row tied to the source records matching ``where``."""
    keys = f"(SELECT source_key FROM source_record WHERE {where})"
    return [
        ("involvement", f"source_key IN {keys}"),
        ("review_item", f"new_key IN {keys} OR other_key IN {keys}"),
        ("source_record", where),
        _ORPHANED_DECISIONS,
        _ORPHANED_TOLD,
        _ORPHANED_PENDING,
    ]


# Rules that delete rows: (table, predicate) in order, one transaction per rule. Table
# names and predicates are fixed strings; the cutoff is a bound parameter.
#
# Organisations send deltas: a record is re-sent only when it changes, so "unseen" alone would
# delete every child whose involvement simply goes on. A record counts as stale when it was
# last sent before the cutoff and either its involvement ended (or was deleted) or its
# organisation has delivered nothing since the cutoff (a system switched off never closes its
# records).
_STALE = (
    "last_seen < :cutoff AND NOT ("
    "EXISTS (SELECT 1 FROM involvement i WHERE i.source_key = source_record.source_key "
    "AND (i.end_date IS NULL OR i.end_date >= :cutoff)) "
    "AND EXISTS (SELECT 1 FROM file_ledger f WHERE f.organisation = source_record.organisation AND f.night >= :cutoff))"
)
_OVER_AGE = "child_id IN (SELECT child_id FROM child WHERE date_of_birth < :cutoff)"
# A merge or split is worth following only while the id it leads to is in the index (or
# leads on to one): one pass removes the last link of each dead chain, so the rule repeats.
_DEAD_HISTORY = (
    "NOT EXISTS (SELECT 1 FROM child c WHERE c.child_id = child_id_history.new_child_id) "
    "AND NOT EXISTS (SELECT 1 FROM child_id_history h WHERE h.old_child_id = child_id_history.new_child_id)"
)
ROW_RULES: dict[str, list[tuple[str, str]]] = {
    "involvement_ended": [("involvement", "end_date IS NOT NULL AND end_date < :cutoff")],
    "record_unseen": _records_of(_STALE),
    "child_over_age": [*_records_of(_OVER_AGE), ("child", "date_of_birth < :cutoff")],
    "child_orphaned": [
        (
            "child",
            "NOT EXISTS (SELECT 1 FROM source_record s WHERE s.child_id = child.child_id) AND last_seen <= :cutoff",
        )
    ],
    "history_orphaned": [("child_id_history", _DEAD_HISTORY)],
    "review_resolved": [("review_item", "status = 'decided' AND resolved_at < :cutoff")],
    "notice_ledger": [("notice_ledger", "night < :cutoff")],
    # Counts and hashes only; a staged file's row stays until it is linked or expires.
    "operational_records": [
        ("file_ledger", "night < :cutoff AND status <> 'staged'"),
        ("night_metric", "night < :cutoff"),
        ("deletion_log", "run_for < :cutoff"),
    ],
}
REPEAT_UNTIL_DONE = {"history_orphaned"}
