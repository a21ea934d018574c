"""linkage.graph on hand-built DuckDB tables: components, conflicting groups, stable ids.

The tables are the ones night.py builds before ``cluster`` and ``assign_ids`` run, with
only the columns those two read. Source keys are fake 64-hex strings, ordered by number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

import duckdb
import pytest

from childindex.linkage.graph import assign_ids, cluster, components

NIGHT = date(2026, 11, 24)
NHS_1 = "a1" * 32  # pseudonymised NHS numbers: any 64 hex characters
NHS_2 = "b2" * 32
X = "C00000000000000AA"  # existing child ids (ordered: X < Y)
Y = "C00000000000000BB"


def k(n: int) -> str:
    """The n-th source key (k(1) < k(2) < ...)."""
    return f"{n:064x}"


def fresh_id(first_key: str, salt: str | None = None) -> str:
    text = first_key if salt is None else f"{first_key}:{salt}"
    return "C" + hashlib.sha256(text.encode()).hexdigest()[:16].upper()


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    old: list[tuple[str, str, str | None]] = (),  # type: ignore[assignment]
    tonight: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
    links: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    decisions: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    existing: list[tuple[str, str]] = (),  # type: ignore[assignment]
    reopened: list[str] = (),  # type: ignore[assignment]
    old_child: list[str] | None = None,
) -> None:
    """``old``: (source_key, child_id, nhs_key) of the index's records kept together;
    ``tonight``: (source_key, nhs_key); ``links``: (new_key, other_key, reason) of pairs
    decide() linked; ``existing``: (source_key, child_id) of tonight's records already in
    the index. Every record of tonight is in the batch."""
    con.execute("""
        CREATE TABLE old_records (source_key VARCHAR, child_id VARCHAR, nhs_key VARCHAR, upn_key VARCHAR);
        CREATE TABLE tonight (source_key VARCHAR, nhs_key VARCHAR, upn_key VARCHAR);
        CREATE TABLE batch (source_key VARCHAR);
        CREATE TABLE outcome (new_key VARCHAR, other_key VARCHAR, p DOUBLE, outcome VARCHAR, reason VARCHAR);
        CREATE TABLE decision (key_a VARCHAR, key_b VARCHAR, decision VARCHAR);
        CREATE TABLE existing (source_key VARCHAR, child_id VARCHAR);
        CREATE TABLE old_child (child_id VARCHAR);
        CREATE TABLE reopened (child_id VARCHAR);
    """)
    for key, child, nhs in old:
        con.execute("INSERT INTO old_records VALUES (?, ?, ?, NULL)", [key, child, nhs])
    for key, nhs in tonight:
        con.execute("INSERT INTO tonight VALUES (?, ?, NULL)", [key, nhs])
        con.execute("INSERT INTO batch VALUES (?)", [key])
    for new, other, reason in links:
        p = None if reason == "decided" else 0.99
        con.execute("INSERT INTO outcome VALUES (?, ?, ?, 'link', ?)", [new, other, p, reason])
    for a, b, what in decisions:
        con.execute("INSERT INTO decision VALUES (?, ?, ?)", [min(a, b), max(a, b), what])
    for key, child in existing:
        con.execute("INSERT INTO existing VALUES (?, ?)", [key, child])
    children = old_child if old_child is not None else sorted({c for _, c, _ in old} | {c for _, c in existing})
    for child in children:
        con.execute("INSERT INTO old_child VALUES (?)", [child])
    for child in reopened:
        con.execute("INSERT INTO reopened VALUES (?)", [child])


def groups(con: duckdb.DuckDBPyConnection) -> list[list[str]]:
    """Source keys grouped by component, each group sorted, groups by first key."""
    rows = con.execute("SELECT list(source_key ORDER BY source_key) FROM clustered GROUP BY comp").fetchall()
    return sorted(r[0] for r in rows)


def outcomes(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[str, str]]:
    rows = con.execute("SELECT new_key, other_key, outcome, reason FROM outcome").fetchall()
    return {(a, b): (o, r) for a, b, o, r in rows}


def child_of(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT source_key, child_id FROM assigned").fetchall())


def history(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute("SELECT old_child_id, new_child_id, reason FROM history ORDER BY ALL").fetchall()


# ---------------------------------------------------------------------------------------
# components()


def test_components_without_edges_are_the_nodes_themselves() -> None:
    assert components(4, [], []).tolist() == [0, 1, 2, 3]
    assert components(0, [], []).tolist() == []


def test_components_follow_chains_and_leave_isolated_nodes_alone() -> None:
    assert components(5, [0, 1, 2], [1, 2, 3]).tolist() == [0, 0, 0, 0, 1]


def test_components_are_undirected_and_split_into_two() -> None:
    # 0-3 and 4-1-2: edges given either way round, one repeated.
    assert components(5, [0, 1, 4, 2], [3, 2, 1, 1]).tolist() == [0, 1, 1, 0, 1]


# ---------------------------------------------------------------------------------------
# cluster()


def test_cluster_joins_linked_records_and_keeps_the_rest_apart(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        old=[(k(1), X, NHS_1), (k(2), X, None), (k(3), Y, None)],
        tonight=[(k(4), NHS_1), (k(5), None), (k(6), None)],
        links=[(k(4), k(1), "probable_match"), (k(6), k(5), "probable_match")],
    )
    assert cluster(con) == 0
    assert groups(con) == [[k(1), k(2), k(4)], [k(3)], [k(5), k(6)]]
    rows = con.execute("SELECT source_key, old_child_id, in_batch FROM clustered ORDER BY source_key").fetchall()
    assert rows == [
        (k(1), X, False),
        (k(2), X, False),
        (k(3), Y, False),
        (k(4), None, True),
        (k(5), None, True),
        (k(6), None, True),
    ]


def test_a_group_with_two_nhs_numbers_has_its_model_links_undone(con: duckdb.DuckDBPyConnection) -> None:
    # k1 (NHS 1) ~ k2 (no number) ~ k3 (NHS 2): no single link is wrong, the chain is.
    build(
        con,
        tonight=[(k(1), NHS_1), (k(2), None), (k(3), NHS_2), (k(4), None)],
        links=[(k(2), k(1), "probable_match"), (k(3), k(2), "probable_match"), (k(4), k(1), "decided")],
    )
    # The person's link k4-k1 stays; k4-k1-k2 alone holds one number, but both model links
    # were in the conflicting group, so both are undone.
    assert cluster(con) == 2
    assert groups(con) == [[k(1), k(4)], [k(2)], [k(3)]]
    assert outcomes(con) == {
        (k(2), k(1)): ("review", "conflicting_group"),
        (k(3), k(2)): ("review", "conflicting_group"),
        (k(4), k(1)): ("link", "decided"),
    }


def test_a_persons_link_is_kept_when_the_model_link_is_the_conflict(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        old=[(k(1), X, NHS_1)],
        tonight=[(k(2), None), (k(3), NHS_2)],
        links=[(k(2), k(1), "decided"), (k(3), k(2), "probable_match")],
    )
    assert cluster(con) == 1
    assert groups(con) == [[k(1), k(2)], [k(3)]]
    assert outcomes(con) == {
        (k(2), k(1)): ("link", "decided"),
        (k(3), k(2)): ("review", "conflicting_group"),
    }


def test_a_non_match_decision_inside_a_group_undoes_its_model_links(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        tonight=[(k(1), None), (k(2), None), (k(3), None)],
        links=[(k(2), k(1), "probable_match"), (k(3), k(2), "probable_match")],
        decisions=[(k(1), k(3), "non_match")],
    )
    assert cluster(con) == 2
    assert groups(con) == [[k(1)], [k(2)], [k(3)]]
    # The reviewer is told it was a person's "different children", not an identifier.
    assert {v for v in outcomes(con).values()} == {("review", "conflicting_decision")}


def test_a_group_conflicting_by_identifiers_and_a_decision_is_told_as_identifiers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # k1 (NHS 1) ~ k2 ~ k3 (NHS 2), and a person said k1 and k3 are different children.
    build(
        con,
        tonight=[(k(1), NHS_1), (k(2), None), (k(3), NHS_2)],
        links=[(k(2), k(1), "probable_match"), (k(3), k(2), "probable_match")],
        decisions=[(k(1), k(3), "non_match")],
    )
    assert cluster(con) == 2
    assert set(outcomes(con).values()) == {("review", "conflicting_group")}


def test_decisions_that_contradict_each_other_are_undone_too(con: duckdb.DuckDBPyConnection) -> None:
    """graph.py: "if people's decisions alone still conflict (they contradict each other),
    undo those too" -- also when the group has no model link to undo first."""
    build(
        con,
        tonight=[(k(1), NHS_1), (k(2), None), (k(3), NHS_2)],
        links=[(k(2), k(1), "decided"), (k(3), k(2), "decided")],
    )
    assert cluster(con) == 2
    assert groups(con) == [[k(1)], [k(2)], [k(3)]]
    assert set(outcomes(con).values()) == {("review", "decided_match_conflicts")}


def test_decisions_contradicting_each_other_after_a_model_link_is_undone(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        tonight=[(k(1), NHS_1), (k(2), None), (k(3), NHS_2), (k(4), None)],
        links=[(k(2), k(1), "decided"), (k(3), k(2), "decided"), (k(4), k(3), "probable_match")],
    )
    assert cluster(con) == 3
    assert groups(con) == [[k(1)], [k(2)], [k(3)], [k(4)]]
    assert outcomes(con) == {
        (k(2), k(1)): ("review", "decided_match_conflicts"),
        (k(3), k(2)): ("review", "decided_match_conflicts"),
        (k(4), k(3)): ("review", "conflicting_group"),
    }


# ---------------------------------------------------------------------------------------
# assign_ids()


def test_an_existing_id_stays_with_the_group_holding_most_of_its_records(con: duckdb.DuckDBPyConnection) -> None:
    # X's three records are all re-sent tonight; the model now links only k1 and k2.
    build(
        con,
        tonight=[(k(1), None), (k(2), None), (k(3), None)],
        links=[(k(2), k(1), "probable_match")],
        existing=[(k(1), X), (k(2), X), (k(3), X)],
    )
    cluster(con)
    assign_ids(con, NIGHT)
    assert child_of(con) == {k(1): X, k(2): X, k(3): fresh_id(k(3))}
    assert history(con) == [(X, fresh_id(k(3)), "split:changed")]


def test_a_split_a_person_asked_for_is_recorded_as_a_decision(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        tonight=[(k(1), None), (k(2), None), (k(3), None)],
        links=[(k(3), k(2), "probable_match")],
        existing=[(k(1), X), (k(2), X), (k(3), X)],
        reopened=[X],
    )
    cluster(con)
    assign_ids(con, NIGHT)
    assert child_of(con) == {k(1): fresh_id(k(1)), k(2): X, k(3): X}
    assert history(con) == [(X, fresh_id(k(1)), "split:decision")]


def test_on_a_merge_the_smallest_id_survives(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        old=[(k(1), Y, NHS_1), (k(2), X, NHS_1), (k(3), X, None)],
        tonight=[(k(4), NHS_1)],
        links=[(k(4), k(1), "probable_match"), (k(4), k(2), "probable_match")],
    )
    assert cluster(con) == 0
    assign_ids(con, NIGHT)
    assert child_of(con) == {k(1): X, k(2): X, k(3): X, k(4): X}
    assert history(con) == [(Y, X, "merge:linkage")]


def test_a_merge_a_person_decided_is_recorded_as_a_decision(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        old=[(k(1), Y, None), (k(2), X, None)],
        tonight=[(k(3), None)],
        links=[(k(3), k(1), "decided"), (k(3), k(2), "probable_match")],
    )
    cluster(con)
    assign_ids(con, NIGHT)
    assert history(con) == [(Y, X, "merge:decision")]


def test_a_new_group_is_named_after_its_smallest_source_key(con: duckdb.DuckDBPyConnection) -> None:
    build(
        con,
        tonight=[(k(9), None), (k(5), None), (k(7), None)],
        links=[(k(9), k(5), "probable_match")],
    )
    cluster(con)
    assign_ids(con, NIGHT)
    first = "C" + hashlib.sha256(k(5).encode("utf-8")).hexdigest()[:16].upper()
    assert first == "C" + hashlib.sha256(("0" * 63 + "5").encode()).hexdigest().upper()[:16]
    assert child_of(con) == {k(5): first, k(9): first, k(7): fresh_id(k(7))}
    assert len(first) == 17 and first[1:] == first[1:].upper()
    assert history(con) == []
    # A rerun gives the same ids.
    assign_ids(con, NIGHT)
    assert child_of(con) == {k(5): first, k(9): first, k(7): fresh_id(k(7))}


def test_a_derived_id_already_taken_is_salted_with_the_night(con: duckdb.DuckDBPyConnection) -> None:
    taken = fresh_id(k(5))
    build(con, tonight=[(k(5), None)], old_child=[taken])
    cluster(con)
    assign_ids(con, NIGHT)
    assert child_of(con) == {k(5): fresh_id(k(5), "2026-11-24")}
