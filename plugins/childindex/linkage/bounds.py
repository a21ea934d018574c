"""Bounded blocks: tonight's records that would make one block too large are held back.

Each fixed blocking rule (:data:`childindex.linkage.blocking.FIXED_RULES`) compares the
records that share its key, so a block costs the square of its size. A placeholder (one
date of birth and postcode on 400,000 rows, a given name "BABY" with a family name
"UNKNOWN", one NHS number on many records) makes one key's block hold a whole file: 400,000
records are 80 billion pairs, and a night spilled until the disk was full.

So before anything is scored, each rule's blocks are counted in SQL: one GROUP BY over
tonight's records, and one over the index's records with the same keys. A block of n of
tonight's records and m of the index's costs n(n-1)/2 + nm comparisons (tonight's records
are compared with each other and with the index, never the index with itself). Tonight's
records in a block over ``CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS`` are **held back**:

- from every rule, not only the one whose block was too large. Splink ORs the rules over one
  set of records, and a record whose date of birth and postcode are a placeholder should not
  bring them into a child by its other fields.
- every record in the block, whoever sent it: a block cannot be cut in two. Each sending
  organisation is told of its own (:mod:`childindex.linkage.held`).
- only records staged tonight. A record the index already holds keeps its previous version,
  which tonight's other records are compared with as usual.

The loose rules (:mod:`.blocking`) are bounded by their own budget: a run takes them only
while all their pairs stay within 50 per record being linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from childindex.linkage.blocking import FIXED_RULES, FixedRule


@dataclass
class Held:
    """What was held back tonight. Counts, rule names and file positions only."""

    records: int = 0  # tonight's records held back (each once, whatever the rules)
    blocks: int = 0  # blocks over the limit, all rules
    largest_block: int = 0  # comparisons of the largest block within the limit
    # (organisation, file position in the batch, rule, records held, blocks, records in the
    # largest block, comparisons of the largest block); a record may count under several rules
    by_rule: list[tuple[str, int, str, int, int, int, int]] = field(default_factory=list)
    # (organisation, file position in the batch, records held): each record once
    by_file: list[tuple[str, int, int]] = field(default_factory=list)


def hold_back_oversize_blocks(con: Any, limit: int) -> Held:
    """Find the blocks over ``limit`` comparisons among tonight's features (``new_f``) and
    the index's (``old_f``); take their records staged tonight (``batch``) out of ``batch``,
    ``tonight`` and ``new_f``, and put the index's version of any of them back among the
    index's records (``old_records``, ``old_f``). Table ``held_record`` (source_key,
    organisation, file_ord, rule, block, block_records, comparisons) keeps what was held."""
    from childindex.linkage.features import features_sql

    held = Held()
    con.execute("""
        CREATE OR REPLACE TABLE held_record (source_key VARCHAR, organisation VARCHAR, file_ord BIGINT,
            rule VARCHAR, block BIGINT, block_records BIGINT, comparisons BIGINT)
    """)
    for rule in FIXED_RULES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE rule_block AS {_blocks_sql(rule, 'new_f', 'old_f')}")
        largest, over = con.execute(
            "SELECT coalesce(max(comparisons) FILTER (WHERE comparisons <= $limit), 0),"
            " count(*) FILTER (WHERE comparisons > $limit) FROM rule_block",
            {"limit": limit},
        ).fetchall()[0]
        held.largest_block = max(held.largest_block, int(largest))
        if over:
            held.blocks += int(over)
            con.execute(_held_sql(rule), {"limit": limit, "rule": rule.name})
    con.execute("DROP TABLE IF EXISTS rule_block")
    held.records = con.execute("SELECT count(DISTINCT source_key) FROM held_record").fetchall()[0][0]
    if not held.records:
        return held
    held.by_rule = [
        (org, int(ord_), rule, int(n), int(b), int(r), int(c))
        for org, ord_, rule, n, b, r, c in con.execute("""
            SELECT organisation, file_ord, rule, count(DISTINCT source_key), count(DISTINCT block),
                   max(block_records), max(comparisons)
            FROM held_record GROUP BY ALL ORDER BY ALL
        """).fetchall()
    ]
    held.by_file = [
        (org, int(ord_), int(n))
        for org, ord_, n in con.execute("""
            SELECT organisation, file_ord, count(DISTINCT source_key) FROM held_record GROUP BY ALL ORDER BY ALL
        """).fetchall()
    ]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE held_key AS SELECT DISTINCT source_key FROM held_record;
        DELETE FROM batch WHERE source_key IN (SELECT source_key FROM held_key);
        DELETE FROM tonight WHERE source_key IN (SELECT source_key FROM held_key);
        DELETE FROM new_f WHERE unique_id IN (SELECT source_key FROM held_key);
        CREATE OR REPLACE TEMP TABLE held_previous AS SELECT e.* FROM existing e SEMI JOIN held_key USING (source_key);
        INSERT INTO old_records BY NAME SELECT * FROM held_previous;
        INSERT INTO old_f BY NAME {features_sql("held_previous")};
        DROP TABLE held_key; DROP TABLE held_previous;
    """)
    return held


def _keys(n: int) -> list[str]:
    return [f"k{i}" for i in range(n)]


def _grouped(table: str, exprs: tuple[str, ...], among: str | None = None) -> str:
    """Records of ``table`` per value of ``exprs`` (as k0, k1, ...), NULLs left out (a NULL
    meets nothing); only the values ``among`` has, when given (the index's records are
    counted only for the keys tonight's have: no GROUP BY over the whole index)."""
    keys = _keys(len(exprs))
    cols = ", ".join(f"{e} AS {k}" for e, k in zip(exprs, keys, strict=True))
    present = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    only = f" SEMI JOIN {among} USING ({', '.join(keys)})" if among else ""
    source = f"(SELECT {cols} FROM {table}){only}"
    return f"SELECT {', '.join(keys)}, count(*) AS n FROM {source} WHERE {present} GROUP BY ALL"


def _blocks_sql(rule: FixedRule, new: str, old: str) -> str:
    """One row per block with any of tonight's records: its key (k0, k1, ...), its records
    (tonight's and the index's) and the comparisons it makes.

    A rule across fields (``left`` of one record equal to ``right`` of the other) pairs, for
    a key v, tonight's records with left = v and those with right = v, and the index's with
    left = v and tonight's with right = v: as many pairs as Splink's join on v makes before
    it keeps one of each pair's two orders (the mirror key makes the other)."""
    using = ", ".join(_keys(len(rule.left)))
    if rule.right is None:
        return f"""
            WITH nl AS ({_grouped(new, rule.left)}),
            ol AS ({_grouped(old, rule.left, "nl")})
            SELECT {using}, nl.n + coalesce(ol.n, 0) AS block_records,
                   nl.n * (nl.n - 1) // 2 + nl.n * coalesce(ol.n, 0) AS comparisons
            FROM nl LEFT JOIN ol USING ({using})
        """
    return f"""
        WITH nl AS ({_grouped(new, rule.left)}), nr AS ({_grouped(new, rule.right)}),
        ol AS ({_grouped(old, rule.left, "nr")})
        SELECT {using}, coalesce(nl.n, 0) + coalesce(nr.n, 0) + coalesce(ol.n, 0) AS block_records,
               coalesce(nl.n, 0) * coalesce(nr.n, 0) + coalesce(ol.n, 0) * coalesce(nr.n, 0) AS comparisons
        FROM nl FULL JOIN nr USING ({using}) LEFT JOIN ol USING ({using})
    """


def _held_sql(rule: FixedRule) -> str:
    """INSERT into ``held_record`` tonight's staged records in ``rule``'s blocks over $limit."""
    sides = [rule.left] if rule.right is None else [rule.left, rule.right]
    joins = " UNION ALL ".join(
        "SELECT f.unique_id AS source_key, b.block, b.block_records, b.comparisons FROM new_f f JOIN big b ON "
        + " AND ".join(f"{expr} = b.{k}" for expr, k in zip(side, _keys(len(side)), strict=True))
        for side in sides
    )
    return f"""
        INSERT INTO held_record
        WITH big AS (SELECT *, row_number() OVER () AS block FROM rule_block WHERE comparisons > $limit)
        SELECT h.source_key, b.organisation, b.file_ord, $rule, h.block, h.block_records, h.comparisons
        FROM ({joins}) h JOIN batch b USING (source_key)
    """
