"""Reading the index into Arrow and publishing a night's changes in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)

from childindex.index.db import engine_for
from childindex.index.ledger import Ledger
from childindex.index.models import (
    Area,
    Base,
    Child,
    ChildIdHistory,
    Involvement,
    LinkDecision,
    NightMetric,
    NoticePending,
    Organisation,
    ReviewItem,
    SourceRecord,
)

_FETCH_BATCH = 50_000
_KEY_CHUNK = 5_000  # bound parameters per IN list (SQLite allows 32k)


def fetch_arrow(conn: Connection, stmt: Any, schema: Any) -> Any:
    """Run a Core statement and return a pyarrow Table with ``schema``, fetched in batches.

    The statement is compiled and run through the driver directly: SQLAlchemy's per-row
    result processing costs more than the query on a large index. Dates come back as
    ``date`` objects (PostgreSQL) or ISO text (SQLite); Arrow casts the text in bulk.
    """
    import pyarrow as pa

    compiled = stmt.compile(dialect=conn.dialect)
    # Only parameter-free statements take the fast path: a bound value pasted into SQL
    # text would end up in any error message, and values here can be children's data.
    result = conn.execute(stmt) if compiled.params else conn.exec_driver_sql(str(compiled))
    batches = []
    while rows := result.fetchmany(_FETCH_BATCH):
        cols = list(zip(*rows, strict=True))
        batches.append(pa.record_batch([_column(c, f.type) for c, f in zip(cols, schema, strict=True)], schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _column(values: tuple, type_: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_date(type_) and any(isinstance(v, str) for v in values):
        return pa.array(values, pa.string()).cast(type_)
    return pa.array(values, type=type_)


def arrow_schema(model: type[Base], columns: Iterable[str] | None = None) -> Any:
    """The Arrow schema of a table's columns (all of them by default), from its model: the
    one place that knows the index's columns and their types."""
    import pyarrow as pa

    types = {String: pa.string(), Text: pa.string(), Date: pa.date32(), DateTime: pa.timestamp("us"),
             Integer: pa.int64(), Float: pa.float64()}  # fmt: skip
    table = model.__table__
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    return pa.schema([(n, types[type(table.c[n].type)]) for n in names])


def fetch_existing(url: str) -> tuple[Any, Any]:
    """(source records, children) of the current index as Arrow tables, every column."""
    rec_schema, child_schema = arrow_schema(SourceRecord), arrow_schema(Child)
    sr, c = SourceRecord, Child
    records_stmt = select(*(getattr(sr, f.name) for f in rec_schema)).order_by(sr.source_key)
    children_stmt = select(*(getattr(c, f.name) for f in child_schema))
    records, children = read_arrow(url, [(records_stmt, rec_schema), (children_stmt, child_schema)])
    return records, children


def fetch_decisions(url: str) -> Any:
    """People's link decisions as an Arrow table (key_a, key_b, decision)."""
    d = LinkDecision
    schema = arrow_schema(LinkDecision, ["key_a", "key_b", "decision"])
    [decisions] = read_arrow(url, [(select(d.key_a, d.key_b, d.decision).order_by(d.key_a, d.key_b), schema)])
    return decisions


def read_arrow(url: str, queries: list[tuple[Any, Any]]) -> list[Any]:
    """Run Core statements and return Arrow tables with the given schemas, all on one
    connection (one consistent view of the index).

    Not through an Arrow-native driver on SQLite: ADBC's driver links its own copy of
    SQLite, and two copies in one process break SQLite's file locks (seen here as
    "disk I/O error" on the index after a read). See :func:`fetch_arrow`.
    """
    with engine_for(url).connect() as conn:
        return [fetch_arrow(conn, stmt, schema) for stmt, schema in queries]


def insert_arrow(conn: Connection, model: Any, table: Any) -> None:
    """Bulk insert an Arrow table, a batch of rows at a time (bounded memory): COPY on
    PostgreSQL, the driver's executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        # In primary-key order, the key's B-tree (and the lookups a foreign key makes into
        # it) grows at its right edge instead of touching random pages: at a million
        # children the index no longer fits PostgreSQL's buffers, and order decides.
        key = [c.name for c in model.__table__.primary_key.columns]
        copy_arrow(conn, model.__table__.name, table.sort_by([(k, "ascending") for k in key]))
        return
    for batch in table.to_batches(_FETCH_BATCH):
        if batch.num_rows:
            conn.execute(insert(model), batch.to_pylist())


def copy_arrow(conn: Connection, table_name: str, table: Any) -> None:
    """COPY an Arrow table into a PostgreSQL table inside ``conn``'s transaction.

    Columnar all the way: Arrow writes each batch as CSV (a null as an empty field, an
    empty string quoted, which is how PostgreSQL's CSV format tells them apart) and psycopg
    streams it to the server. No row is turned into Python objects. The table and column
    names are the index's own (models), never input.
    """
    import io

    import pyarrow.csv as pacsv

    columns = ", ".join(f'"{c}"' for c in table.column_names)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "COPY needs the driver's connection"
    cursor = dbapi.cursor()
    try:
        with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for batch in table.to_batches(_FETCH_BATCH):
                if batch.num_rows:
                    buffer = io.BytesIO()
                    pacsv.write_csv(batch, buffer, write_options=options)
                    copy.write(buffer.getbuffer())
    finally:
        cursor.close()


def _rows(table: Any, drop: tuple[str, ...] = ()) -> list[dict]:
    cols = [c for c in table.column_names if c not in drop]
    return table.select(cols).to_pylist()


def _chunks(values: list[Any], size: int = _KEY_CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def delete_in(conn: Connection, table: Any, column: Any, values: list) -> int:
    n = 0
    stmt = delete(table).where(column.in_(bindparam("keys", expanding=True)))
    for chunk in _chunks(values):
        n += conn.execute(stmt, {"keys": chunk}).rowcount
    return n


def publish(
    url: str,
    plan: dict | None,
    ledger_ids: list[int],
    night: date,
    registry: tuple[list[dict[str, str]], list[dict[str, str]]] | None = None,
    held_ids: list[int] | None = None,
) -> dict[str, int]:
    """Apply a linkage plan and mark the files linked: all of it, or none of it.

    ``registry`` is (organisations, areas) as rows: the index's copy of who and where, which
    the reader view names involvements by, is brought up to date in the same transaction.
    ``held_ids``: files some of whose records were held back, which stay staged."""
    stats = {"children_created": 0, "children_updated": 0, "merges": 0, "splits": 0}
    with engine_for(url).begin() as conn:
        if registry is not None:
            _sync(conn, Organisation, registry[0])
            _sync(conn, Area, registry[1])
        if plan is not None:
            child = plan["child"]
            is_new = child["is_new"].to_pylist()
            stats["children_created"] = sum(is_new)
            stats["children_updated"] = len(is_new) - stats["children_created"]
            # 1. Children first, so every reference below has a target: update the ids the
            #    index holds, insert the others.
            import pyarrow.compute as pc

            fields = [c for c in child.column_names if c not in ("is_new", "in_index")]
            update_stmt = (
                update(Child)
                .where(Child.child_id == bindparam("b_child_id"))
                .values({c: bindparam(f"b_{c}") for c in fields if c != "child_id"})
            )
            present = child["in_index"]
            for batch in child.filter(present).select(fields).to_batches(_FETCH_BATCH):
                conn.execute(update_stmt, [{f"b_{k}": v for k, v in r.items()} for r in batch.to_pylist()])
            insert_arrow(conn, Child, child.filter(pc.invert(present)).select(fields))
            # 2. Existing records whose child changed (merges and splits).
            remap = _rows(plan["remap"])
            if remap:
                for model in (SourceRecord, Involvement):
                    conn.execute(
                        update(model).where(model.source_key == bindparam("k")).values(child_id=bindparam("c")),
                        [{"k": r["source_key"], "c": r["child_id"]} for r in remap],
                    )
            # 3. Tonight's records replace their previous versions, and their open review
            #    items are replaced by tonight's (review items cascade with the records).
            keys = plan["source_record"]["source_key"].to_pylist()
            relinked = plan["tonight_keys"]["source_key"].to_pylist()
            for column in (ReviewItem.new_key, ReviewItem.other_key):
                stmt = delete(ReviewItem).where(
                    ReviewItem.status == "open", column.in_(bindparam("keys", expanding=True))
                )
                for chunk in _chunks(relinked):
                    conn.execute(stmt, {"keys": chunk})
            delete_in(conn, Involvement.__table__, Involvement.source_key, keys)
            delete_in(conn, SourceRecord.__table__, SourceRecord.source_key, keys)
            if keys:
                insert_arrow(conn, SourceRecord, plan["source_record"])
                insert_arrow(conn, Involvement, plan["involvement"])
            # 4. Ids that no longer hold any record were merged away.
            retired = plan["retired"]["child_id"].to_pylist()
            for chunk in _chunks(retired):
                conn.execute(
                    text(
                        "DELETE FROM child WHERE child_id IN :ids AND NOT EXISTS "
                        "(SELECT 1 FROM source_record s WHERE s.child_id = child.child_id)"
                    ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": chunk},
                )
            pending = plan["notice_pending"]
            delete_in(conn, NoticePending.__table__, NoticePending.source_key, pending["source_key"].to_pylist())
            insert_arrow(conn, NoticePending, pending)
            review = _rows(plan["review"])
            if review:
                conn.execute(insert(ReviewItem), review)
            history = _rows(plan["history"])
            if history:
                conn.execute(insert(ChildIdHistory), [{**h, "night": night} for h in history])
            stats["merges"] = sum(h["reason"].startswith("merge") for h in history)
            stats["splits"] = sum(h["reason"].startswith("split") for h in history)
        Ledger.mark_linked(conn, ledger_ids)
        Ledger.mark_held(conn, held_ids or [])
    return stats


def _sync(conn: Connection, model: Any, rows: list[dict[str, str]]) -> None:
    """Upsert rows by code (delete + insert: portable). Codes no longer registered stay while
    an involvement may still name them; they are organisational data, not a child's."""
    delete_in(conn, model.__table__, model.code, [r["code"] for r in rows])
    if rows:
        conn.execute(insert(model), rows)


def put_metrics(url: str, night: date, metrics: dict[str, float]) -> None:
    """Upsert one night's metrics (delete + insert: portable and idempotent)."""
    with engine_for(url).begin() as conn:
        conn.execute(delete(NightMetric).where(NightMetric.night == night, NightMetric.name.in_(list(metrics))))
        if metrics:
            conn.execute(
                insert(NightMetric), [{"night": night, "name": k, "value": float(v)} for k, v in metrics.items()]
            )
