"""Loose blocking rules (one field equal) are used only while the pairs they add stay
within budget: always for a small run, never for a birthday among many children."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from childindex.linkage.blocking import (
    LOOSE_PAIRS_PER_RECORD,
    affordable_loose_rules,
    blocking_rules,
    loose_pairs,
    rules_for_run,
)


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("CREATE TABLE new_f (given VARCHAR, family VARCHAR, dob VARCHAR, postcode VARCHAR)")
    c.execute("CREATE TABLE old_f (given VARCHAR, family VARCHAR, dob VARCHAR, postcode VARCHAR)")
    yield c
    c.close()


def test_pairs_are_counted_within_and_between(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""INSERT INTO new_f VALUES ('ANNA', 'SMITH', '2019-01-01', 'DH1 1AA'),
                   ('ANNA', 'JONES', '2019-01-02', 'DH1 1AB'), ('SMITH', 'ANNA', NULL, NULL)""")
    con.execute("INSERT INTO old_f VALUES ('ANNA', 'BROWN', '2019-01-01', NULL), (NULL, 'ANNA', NULL, NULL)")
    assert loose_pairs(con, "new_f", None, "given", "given") == 1  # the two ANNAs tonight
    assert loose_pairs(con, "new_f", "old_f", "given", "given") == 1 + 2  # and each with the old ANNA
    assert loose_pairs(con, "new_f", None, "dob", "dob") == 0  # NULL meets nothing
    # A given name equal to another record's family name, three times tonight (ANNA x2 with
    # SMITH/ANNA, SMITH with ANNA/SMITH): Splink orders each pair by id, so this rule and its
    # mirror each take about half.
    assert loose_pairs(con, "new_f", None, "given", "family") == 3 // 2
    # Between: a new given = an old family (two ANNAs x one), an old given = a new family (one).
    assert loose_pairs(con, "new_f", "old_f", "given", "family") == 1 + 2 + 1


def test_a_small_run_affords_every_loose_rule(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO new_f SELECT 'G' || (i % 50), 'F' || (i % 40), '2019-01-' || (1 + i % 28), 'DH1 ' || i "
        "FROM range(400) t(i)"
    )
    rules = affordable_loose_rules(con, "new_f")
    assert len(rules) == 6
    assert rules[-1] == "l.dob = r.dob", "cheapest first: 28 birthdays among 400 make the most pairs"
    assert len(rules_for_run(con, "new_f")) == len(blocking_rules()) + 6


def test_a_rule_over_budget_is_left_out(con: duckdb.DuckDBPyConnection) -> None:
    # 2,000 records, one birthday: 2,000 x 1,999 / 2 pairs, far over 50 a record.
    con.execute("INSERT INTO new_f SELECT 'G' || i, 'F' || i, '2019-01-01', 'DH1 ' || i FROM range(2000) t(i)")
    assert loose_pairs(con, "new_f", None, "dob", "dob") > LOOSE_PAIRS_PER_RECORD * 2000
    rules = affordable_loose_rules(con, "new_f")
    assert "l.dob = r.dob" not in rules
    assert "l.given = r.given" in rules  # no pairs at all: free
