"""index.store beyond a whole night: reading into Arrow, metrics, publishing nothing but the
ledger, and COPY's edge cases (tests/index/test_bulk_load.py has the common awkward strings
and NULL against "" in one batch; these are the rest)."""

from __future__ import annotations

import hashlib
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import insert, select, text

from childindex.index.db import engine_for, migrate
from childindex.index.ledger import Ledger
from childindex.index.models import Child, Involvement, NightMetric, SourceRecord
from childindex.index.store import copy_arrow, fetch_arrow, publish, put_metrics

N1, N2 = date(2026, 11, 24), date(2026, 11, 25)

RECORD_SCHEMA = pa.schema(
    [
        ("source_key", pa.string()),
        ("child_id", pa.string()),
        ("given_name", pa.string()),
        ("date_of_birth", pa.date32()),
        ("postcode", pa.string()),
        ("first_seen", pa.date32()),
    ]
)


def key(n: int) -> str:
    return hashlib.sha256(f"record {n}".encode()).hexdigest()


@pytest.fixture()
def pg(pg_url: str) -> str:
    migrate(pg_url)
    return pg_url


def add_child(conn, child_id: str) -> None:
    conn.execute(
        insert(Child),
        [
            {
                "child_id": child_id,
                "given_name": "Ada",
                "family_name": "Example",
                "date_of_birth": date(2015, 3, 4),
                "sex": "F",
                "postcode": None,
                "first_seen": N1,
                "last_seen": N1,
            }
        ],
    )


def add_records(url: str) -> None:
    with engine_for(url).begin() as conn:
        add_child(conn, "C1")
        conn.execute(
            insert(SourceRecord),
            [
                {
                    "source_key": key(n),
                    "organisation": "RH1",
                    "child_id": "C1",
                    "nhs_key": None,
                    "upn_key": None,
                    "match_key": key(100 + n),
                    "first_seen": N1,
                    "last_seen": N2,
                    "given_name": given,
                    "family_name": "Example",
                    "date_of_birth": dob,
                    "sex": "F",
                    "postcode": postcode,
                }
                for n, given, dob, postcode in (
                    (1, "Ada", date(2015, 3, 4), "LS6 2AB"),
                    (2, None, None, None),
                    (3, "", date(2016, 12, 31), ""),
                )
            ],
        )


def records_stmt():
    sr = SourceRecord
    return select(*(getattr(sr, f.name) for f in RECORD_SCHEMA)).order_by(sr.given_name.is_(None), sr.given_name)


# ---------------------------------------------------------------------------------------
# fetch_arrow


def test_fetch_arrow_returns_the_schema_asked_for_with_dates_and_nulls(url: str) -> None:
    add_records(url)
    with engine_for(url).connect() as conn:
        table = fetch_arrow(conn, records_stmt(), RECORD_SCHEMA)
        raw = conn.exec_driver_sql("SELECT date_of_birth FROM source_record WHERE given_name = 'Ada'").scalar_one()
    if url.startswith("sqlite"):
        assert raw == "2015-03-04"  # SQLite hands back text: fetch_arrow casts it
    else:
        assert raw == date(2015, 3, 4)
    assert table.schema == RECORD_SCHEMA
    assert table.to_pylist() == [
        {
            "source_key": key(3),
            "child_id": "C1",
            "given_name": "",
            "date_of_birth": date(2016, 12, 31),
            "postcode": "",
            "first_seen": N1,
        },
        {
            "source_key": key(1),
            "child_id": "C1",
            "given_name": "Ada",
            "date_of_birth": date(2015, 3, 4),
            "postcode": "LS6 2AB",
            "first_seen": N1,
        },
        {
            "source_key": key(2),
            "child_id": "C1",
            "given_name": None,
            "date_of_birth": None,
            "postcode": None,
            "first_seen": N1,
        },
    ]
    assert table.column("date_of_birth").null_count == 1


def test_fetch_arrow_with_bound_parameters(url: str) -> None:
    add_records(url)
    stmt = records_stmt().where(SourceRecord.source_key.in_([key(1), key(2)]))
    with engine_for(url).connect() as conn:
        table = fetch_arrow(conn, stmt, RECORD_SCHEMA)
    assert table.schema == RECORD_SCHEMA
    assert table.column("source_key").to_pylist() == [key(1), key(2)]
    assert table.column("date_of_birth").to_pylist() == [date(2015, 3, 4), None]


def test_fetch_arrow_of_nothing_is_an_empty_table_with_the_schema(url: str) -> None:
    with engine_for(url).connect() as conn:
        table = fetch_arrow(conn, records_stmt(), RECORD_SCHEMA)
    assert table.num_rows == 0
    assert table.schema == RECORD_SCHEMA
    assert table.column_names == [f.name for f in RECORD_SCHEMA]


def test_fetch_arrow_columns_follow_the_schema_order(url: str) -> None:
    add_records(url)
    schema = pa.schema([("postcode", pa.string()), ("first_seen", pa.date32()), ("source_key", pa.string())])
    sr = SourceRecord
    with engine_for(url).connect() as conn:
        table = fetch_arrow(conn, select(sr.postcode, sr.first_seen, sr.source_key).order_by(sr.source_key), schema)
    expected = sorted([(key(1), "LS6 2AB"), (key(2), None), (key(3), "")])
    assert table.schema == schema
    assert list(zip(table["source_key"].to_pylist(), table["postcode"].to_pylist(), strict=True)) == expected
    assert table["first_seen"].to_pylist() == [N1, N1, N1]


# ---------------------------------------------------------------------------------------
# put_metrics


def metrics(url: str) -> list[tuple[date, str, float]]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(NightMetric.night, NightMetric.name, NightMetric.value).order_by(NightMetric.night, NightMetric.name)
        ).all()
    return [tuple(r) for r in rows]


def test_put_metrics_twice_replaces_instead_of_adding(url: str) -> None:
    put_metrics(url, N1, {"linkage_links": 5, "intake_rows": 100.5})
    put_metrics(url, N1, {"linkage_links": 5, "intake_rows": 100.5})
    assert metrics(url) == [(N1, "intake_rows", 100.5), (N1, "linkage_links", 5.0)]
    put_metrics(url, N1, {"linkage_links": 7})  # replaces that metric only
    put_metrics(url, N2, {"linkage_links": 1})  # another night is its own
    put_metrics(url, N2, {})  # nothing to write: nothing changes
    assert metrics(url) == [
        (N1, "intake_rows", 100.5),
        (N1, "linkage_links", 7.0),
        (N2, "linkage_links", 1.0),
    ]
    assert all(isinstance(v, float) for *_, v in metrics(url))


# ---------------------------------------------------------------------------------------
# publish without a plan


def test_publish_without_a_plan_only_marks_the_files_linked(url: str) -> None:
    ledger = Ledger(url)
    for n in (1, 2, 3):
        ledger.record(
            organisation="RH1", file_name=f"f{n}.csv", sha256=key(n), night=N1, status="staged", staged_path=None
        )
    ids = [row[0] for row in ledger.staged()]
    stats = publish(url, None, [ids[0], ids[2]], N1)
    assert stats == {"children_created": 0, "children_updated": 0, "merges": 0, "splits": 0}
    assert ledger.staged() == [(ids[1], "RH1", None, N1)]
    with engine_for(url).connect() as conn:
        assert dict(conn.execute(text("SELECT file_name, status FROM file_ledger")).all()) == {
            "f1.csv": "linked",
            "f2.csv": "staged",
            "f3.csv": "linked",
        }
        for table in (
            "child",
            "source_record",
            "involvement",
            "child_id_history",
            "review_item",
            "night_metric",
            "organisation",
            "area",
        ):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
    assert publish(url, None, [], N1) == stats
    assert ledger.staged() == [(ids[1], "RH1", None, N1)]


# ---------------------------------------------------------------------------------------
# publish: the registry's organisations and areas

ORGANISATIONS = [
    {"code": "RH1", "name": "Test community health (synthetic)", "sector": "health"},
    {"code": "840", "name": "Test education (synthetic)", "sector": "education"},
    {"code": "E06000047", "name": "Test children's social care (synthetic)", "sector": "social_care"},
]
AREAS = [{"code": "E06000047", "name": "County Durham"}, {"code": "E06000005", "name": "Darlington"}]


def table_rows(url: str, sql: str) -> list[tuple]:
    with engine_for(url).connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(sql)).all())


def test_publish_syncs_the_registrys_organisations_and_areas(url: str) -> None:
    ledger = Ledger(url)
    ledger.record(organisation="RH1", file_name="f.csv", sha256=key(1), night=N1, status="staged")
    [(file_id, *_)] = ledger.staged()
    stats = publish(url, None, [file_id], N1, (ORGANISATIONS, AREAS))
    assert stats == {"children_created": 0, "children_updated": 0, "merges": 0, "splits": 0}
    assert ledger.staged() == []  # the same transaction marks the files linked
    expected_orgs = sorted((o["code"], o["name"], o["sector"]) for o in ORGANISATIONS)
    expected_areas = sorted((a["code"], a["name"]) for a in AREAS)
    assert table_rows(url, "SELECT code, name, sector FROM organisation") == expected_orgs
    assert table_rows(url, "SELECT code, name FROM area") == expected_areas
    # Again: the same rows, not twice.
    publish(url, None, [], N2, (ORGANISATIONS, AREAS))
    assert table_rows(url, "SELECT code, name, sector FROM organisation") == expected_orgs
    assert table_rows(url, "SELECT code, name FROM area") == expected_areas
    # A renamed organisation (and area) is updated; one no longer registered stays, since
    # involvements may still name it.
    renamed = [{**ORGANISATIONS[0], "name": "Renamed community health (synthetic)"}, ORGANISATIONS[2]]
    publish(url, None, [], N2, (renamed, [{"code": "E06000047", "name": "Durham"}]))
    assert table_rows(url, "SELECT code, name, sector FROM organisation") == sorted(
        [
            ("RH1", "Renamed community health (synthetic)", "health"),
            ("840", "Test education (synthetic)", "education"),
            ("E06000047", "Test children's social care (synthetic)", "social_care"),
        ]
    )
    assert table_rows(url, "SELECT code, name FROM area") == [("E06000005", "Darlington"), ("E06000047", "Durham")]
    # Without registry rows publish leaves both tables alone.
    publish(url, None, [], N2)
    assert len(table_rows(url, "SELECT code FROM organisation")) == 3


def test_publish_registry_sync_is_undone_with_a_failed_publish(url: str) -> None:
    with pytest.raises(TypeError):  # a plan that fails after the registry's rows were written
        publish(url, {"child": None}, [], N1, (ORGANISATIONS, AREAS))
    assert table_rows(url, "SELECT code FROM organisation") == []
    assert table_rows(url, "SELECT code FROM area") == []


def test_the_reader_view_names_the_organisation_and_the_area(url: str) -> None:
    with engine_for(url).begin() as conn:
        add_child(conn, "C1")
        conn.execute(
            insert(SourceRecord),
            [
                {"source_key": key(n), "organisation": org, "child_id": "C1", "match_key": key(100 + n),
                 "first_seen": N1, "last_seen": N1}
                for n, org in ((1, "RH1"), (2, "E06000047"), (3, "health"))
            ],
        )  # fmt: skip
        conn.execute(
            insert(Involvement),
            [
                {"source_key": key(n), "child_id": "C1", "organisation": org, "sector": sector, "area": area,
                 "service": "svc", "contact_route": "0191 496 0000", "start_date": N1, "end_date": None,
                 "last_seen": N1}
                for n, org, sector, area in (
                    (1, "RH1", "health", "E06000047"),
                    (2, "E06000047", "social_care", "E06000005"),
                    (3, "health", "health", None),  # from before the registry (migration 0010)
                )
            ],
        )  # fmt: skip
    publish(url, None, [], N1, (ORGANISATIONS, AREAS))
    view = "SELECT organisation, organisation_name, sector, area, area_name, service FROM reader_involvement"
    assert table_rows(url, view) == sorted(
        [
            ("RH1", "Test community health (synthetic)", "health", "E06000047", "County Durham", "svc"),
            ("E06000047", "Test children's social care (synthetic)", "social_care", "E06000005", "Darlington", "svc"),
            ("health", None, "health", None, None, "svc"),
        ]
    )
    publish(url, None, [], N2, ([{**ORGANISATIONS[0], "name": "New name"}], AREAS))
    assert ("RH1", "New name") in table_rows(url, "SELECT organisation, organisation_name FROM reader_involvement")


# ---------------------------------------------------------------------------------------
# copy_arrow (PostgreSQL)

AWKWARD = [
    "\\N",  # the text format's NULL marker: in CSV it is just text
    '"',
    '""',
    ",",
    "NULL",
    " padded ",
    "tab\there",
    "cr\r\nlf",
    "emoji \U0001f9d2 and ß",
    "'; DROP TABLE child; --",
]


def record_table(rows: list[dict]) -> pa.Table:
    schema = pa.schema(
        [
            ("source_key", pa.string()),
            ("organisation", pa.string()),
            ("child_id", pa.string()),
            ("match_key", pa.string()),
            ("first_seen", pa.date32()),
            ("last_seen", pa.date32()),
            ("given_name", pa.string()),
            ("family_name", pa.string()),
            ("date_of_birth", pa.date32()),
            ("nhs_key", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def record_row(n: int, given: str | None, family: str | None = "F", dob: date | None = None) -> dict:
    return {
        "source_key": key(n),
        "organisation": "RH1",
        "child_id": "C1",
        "match_key": key(500 + n),
        "first_seen": N1,
        "last_seen": N1,
        "given_name": given,
        "family_name": family,
        "date_of_birth": dob,
        "nhs_key": None if n % 2 else key(900 + n),
    }


def test_copy_keeps_rarer_awkward_strings_and_null_dates_across_batches(pg: str) -> None:
    rows = [record_row(i, s, family=None if i % 3 == 0 else "", dob=None) for i, s in enumerate(AWKWARD)]
    rows.append(record_row(len(AWKWARD), None, family="F", dob=date(2014, 2, 28)))
    first = record_table(rows[:4])
    empty = record_table([])
    rest = record_table(rows[4:])
    table = pa.Table.from_batches([*first.to_batches(), *empty.to_batches(), *rest.to_batches()], schema=first.schema)
    assert table.num_rows == len(AWKWARD) + 1 and len(table.to_batches()) >= 2
    with engine_for(pg).begin() as conn:
        add_child(conn, "C1")
        copy_arrow(conn, "source_record", table)
    with engine_for(pg).connect() as conn:
        got = {
            r.source_key: (r.given_name, r.family_name, r.date_of_birth, r.nhs_key)
            for r in conn.execute(
                text("SELECT source_key, given_name, family_name, date_of_birth, nhs_key FROM source_record")
            )
        }
    assert got == {r["source_key"]: (r["given_name"], r["family_name"], r["date_of_birth"], r["nhs_key"]) for r in rows}
    assert [got[key(i)][0] for i in range(len(AWKWARD))] == AWKWARD
    assert got[key(0)][1] is None and got[key(1)][1] == ""
    assert got[key(len(AWKWARD))] == (None, "F", date(2014, 2, 28), key(900 + len(AWKWARD)))


def test_copy_of_an_empty_table_writes_nothing(pg: str) -> None:
    with engine_for(pg).begin() as conn:
        copy_arrow(conn, "source_record", record_table([]))
    with engine_for(pg).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_record")).scalar_one() == 0


def test_copy_is_part_of_the_callers_transaction(pg: str) -> None:
    with engine_for(pg).begin() as conn:
        add_child(conn, "C1")
    with pytest.raises(RuntimeError, match="later step failed"), engine_for(pg).begin() as conn:
        copy_arrow(conn, "source_record", record_table([record_row(1, "Ada"), record_row(2, "")]))
        assert conn.execute(text("SELECT count(*) FROM source_record")).scalar_one() == 2
        raise RuntimeError("later step failed")
    with engine_for(pg).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_record")).scalar_one() == 0


def test_copy_refuses_a_row_that_breaks_a_constraint_and_keeps_none(pg: str) -> None:
    # No child C1: the foreign key fails the whole COPY, not just that row.
    with pytest.raises(Exception, match="foreign key"), engine_for(pg).begin() as conn:
        copy_arrow(conn, "source_record", record_table([record_row(1, "Ada"), record_row(2, "Bea")]))
    with engine_for(pg).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_record")).scalar_one() == 0
