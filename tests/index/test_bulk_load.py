"""PostgreSQL loads with COPY from Arrow: exactly what the SQLite path writes, nulls and
awkward strings included."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
from sqlalchemy import text

from childindex.index.db import engine_for, migrate
from childindex.index.store import copy_arrow
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.settings import load_settings
from childindex.simulation.synthetic import generate_night

NIGHT = date(2026, 11, 24)


def test_copy_keeps_nulls_empty_strings_and_awkward_text(pg_url) -> None:
    migrate(pg_url)
    names = ["O'Brien", 'Say "hi", then', "line\nbreak", "", None, "Zoë Ñúñez", "back\\slash"]
    table = pa.table(
        {
            "child_id": pa.array([f"C{i}" for i in range(len(names))]),
            "given_name": pa.array(["x" if n is None else n for n in names]),
            "family_name": pa.array(["F"] * len(names)),
            "date_of_birth": pa.array([date(2015, 1, i + 1) for i in range(len(names))], pa.date32()),
            "sex": pa.array(["F"] * len(names)),
            "postcode": pa.array([None, "", "LS6 2AB", None, "", "M1 1AA", "E1 6AN"]),  # NULL and "" differ
            "first_seen": pa.array([NIGHT] * len(names), pa.date32()),
            "last_seen": pa.array([NIGHT] * len(names), pa.date32()),
        }
    )
    with engine_for(pg_url).begin() as conn:
        copy_arrow(conn, "child", table)
    with engine_for(pg_url).connect() as conn:
        rows = conn.execute(text("SELECT given_name, postcode, date_of_birth FROM child ORDER BY child_id")).all()
    assert [r.given_name for r in rows] == ["x" if n is None else n for n in names]
    assert [r.postcode for r in rows] == [None, "", "LS6 2AB", None, "", "M1 1AA", "E1 6AN"]
    assert rows[2].date_of_birth == date(2015, 1, 3)


def test_a_night_on_postgresql_equals_the_same_night_on_sqlite(data_dir, pg_url, tmp_path) -> None:
    contents = {}
    for name, url in (("sqlite", None), ("postgresql", pg_url)):
        settings = load_settings(**({"index_url": url} if url else {}), data_dir=tmp_path / name)
        settings.ensure_dirs()
        migrate(settings.index_url)
        generate_night(
            settings.drop_root,
            tmp_path / f"truth-{name}",
            registry=settings.registry,
            children=1500,
            seed=3,
            first_night=NIGHT,
        )
        for organisation in settings.registry.organisations:
            run_intake(settings, organisation.code, NIGHT)
        link_pending(settings, NIGHT)
        with engine_for(settings.index_url).connect() as conn:
            contents[name] = {
                t: sorted(tuple(str(v) for v in r) for r in conn.execute(text(f"SELECT {cols} FROM {t}")).all())
                for t, cols in (
                    ("child", "child_id, given_name, family_name, date_of_birth, sex, postcode, first_seen"),
                    ("source_record", "source_key, organisation, child_id, nhs_key, upn_key, match_key, given_name, "
                                      "family_name, date_of_birth, sex, postcode"),
                    ("involvement", "source_key, child_id, organisation, sector, area, service, contact_route, "
                                    "start_date, end_date"),
                    ("organisation", "code, name, sector"),
                    ("area", "code, name"),
                )
            }  # fmt: skip
    assert len(contents["postgresql"]["child"]) > 1000
    assert {r[1] for r in contents["postgresql"]["source_record"]} == {"RH1", "840", "E06000047"}
    assert len(contents["postgresql"]["organisation"]) == 3 and len(contents["postgresql"]["area"]) == 1
    with engine_for(pg_url).connect() as conn:  # involvement's child is its record's
        assert not conn.execute(
            text(
                "SELECT count(*) FROM involvement i JOIN source_record s USING (source_key) "
                "WHERE s.child_id <> i.child_id"
            )
        ).scalar_one()
    for table in contents["sqlite"]:
        assert contents["postgresql"][table] == contents["sqlite"][table], table
