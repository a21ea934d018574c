"""linkage.scoring.decide() on a hand-built ``scored`` table: each pair's outcome and reason.

Gamma levels as Splink numbers them: identifiers -1 (missing), 1 (equal), 0 (different);
given names -1 (missing), 6 (exact) down to 1 and 2 (Jaro-Winkler 0.8 and 0.9, the loose
levels) and 0 (anything else). No Splink here: decide() is SQL over these columns.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from childindex.linkage.model import GIVEN_LOOSE_LEVELS
from childindex.linkage.scoring import OUTCOME_OF, decide
from childindex.settings import LinkageSettings

LINKAGE = LinkageSettings(match_threshold=0.95, review_threshold=0.5)
EXACT, ELSE, MISSING = 6, 0, -1
SAME, DIFFERENT = 1, 0


def k(n: int) -> str:
    """The n-th fake source key (64 hex characters; k(1) < k(2) < ...)."""
    return f"{n:064x}"


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("""
        CREATE TABLE scored (new_key VARCHAR, other_key VARCHAR, p DOUBLE,
                             gamma_given INTEGER, gamma_nhs_key INTEGER, gamma_upn_key INTEGER);
        CREATE TABLE decision (key_a VARCHAR, key_b VARCHAR, decision VARCHAR);
    """)
    yield c
    c.close()


def score(
    con: duckdb.DuckDBPyConnection,
    new: int,
    other: int,
    p: float,
    given: int = EXACT,
    nhs: int = MISSING,
    upn: int = MISSING,
) -> None:
    con.execute("INSERT INTO scored VALUES (?, ?, ?, ?, ?, ?)", [k(new), k(other), p, given, nhs, upn])


def decided(con: duckdb.DuckDBPyConnection, a: int, b: int, what: str) -> None:
    con.execute("INSERT INTO decision VALUES (?, ?, ?)", [min(k(a), k(b)), max(k(a), k(b)), what])


def outcomes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, float | None, str, str]]:
    return con.execute("SELECT new_key, other_key, p, outcome, reason FROM outcome ORDER BY ALL").fetchall()


def test_the_loose_levels_are_one_and_two() -> None:
    assert GIVEN_LOOSE_LEVELS == (1, 2)


def test_a_sure_pair_links_and_an_unsure_one_goes_to_review(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.97)
    score(con, 3, 1, 0.95)  # exactly the match threshold: links
    score(con, 4, 1, 0.9499)
    score(con, 5, 1, 0.6)
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(2), k(1), 0.97, "link", "probable_match"),
        (k(3), k(1), 0.95, "link", "probable_match"),
        (k(4), k(1), 0.9499, "review", "probability_between_thresholds"),
        (k(5), k(1), 0.6, "review", "probability_between_thresholds"),
    ]


def test_the_match_threshold_comes_from_the_settings(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.97)
    decide(con, LinkageSettings(match_threshold=0.98, review_threshold=0.5))
    assert outcomes(con) == [(k(2), k(1), 0.97, "review", "probability_between_thresholds")]


def test_different_identifiers_mean_different_children_whatever_p(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.999, nhs=DIFFERENT)
    score(con, 3, 1, 0.6, nhs=DIFFERENT)
    score(con, 4, 1, 0.999, nhs=SAME, upn=DIFFERENT)  # a shared NHS number does not outweigh a different UPN
    score(con, 5, 1, 0.999, given=1, upn=DIFFERENT)
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(2), k(1), 0.999, "none", "identifiers_differ"),
        (k(3), k(1), 0.6, "none", "identifiers_differ"),
        (k(4), k(1), 0.999, "none", "identifiers_differ"),
        (k(5), k(1), 0.999, "none", "identifiers_differ"),
    ]


def test_given_names_that_differ_without_a_shared_identifier_are_not_linked(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.99, given=ELSE)
    score(con, 3, 1, 0.99, given=ELSE, nhs=SAME)  # the same NHS number: the name was changed
    score(con, 4, 1, 0.99, given=ELSE, upn=SAME)
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(2), k(1), 0.99, "none", "given_names_differ"),
        (k(3), k(1), 0.99, "link", "probable_match"),
        (k(4), k(1), 0.99, "link", "probable_match"),
    ]


@pytest.mark.parametrize("level", GIVEN_LOOSE_LEVELS)
def test_loosely_resembling_given_names_go_to_review(con: duckdb.DuckDBPyConnection, level: int) -> None:
    score(con, 2, 1, 0.99, given=level)
    score(con, 3, 1, 0.99, given=level, nhs=SAME)
    score(con, 4, 1, 0.99, given=3)  # a closer level (a short form): the probability decides
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(2), k(1), 0.99, "review", "given_names_resemble"),
        (k(3), k(1), 0.99, "link", "probable_match"),
        (k(4), k(1), 0.99, "link", "probable_match"),
    ]


def test_a_persons_non_match_wins_over_the_model(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.99, nhs=SAME)
    score(con, 1, 3, 0.99)  # tonight's record has the smaller key: the decision is still found
    decided(con, 1, 2, "non_match")
    decided(con, 1, 3, "non_match")
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(1), k(3), 0.99, "none", "decided"),
        (k(2), k(1), 0.99, "none", "decided"),
    ]


def test_a_persons_match_wins_over_different_identifiers(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.6, given=ELSE, nhs=DIFFERENT)
    decided(con, 1, 2, "match")
    decide(con, LINKAGE)
    rows = outcomes(con)
    assert {(a, b, o, r) for a, b, _p, o, r in rows} == {
        (k(2), k(1), "link", "decided"),
        (k(1), k(2), "link", "decided"),
    }
    assert all(o == "link" for *_, o, _r in rows)


def test_a_persons_match_links_a_pair_the_model_did_not_score(con: duckdb.DuckDBPyConnection) -> None:
    score(con, 2, 1, 0.6)
    decided(con, 7, 5, "match")
    decided(con, 8, 6, "non_match")  # not scored and not a match: nothing
    decide(con, LINKAGE)
    assert outcomes(con) == [
        (k(2), k(1), 0.6, "review", "probability_between_thresholds"),
        (k(5), k(7), None, "link", "decided"),
    ]


def test_no_scores_and_no_decisions_give_no_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    decide(con, LINKAGE)
    assert outcomes(con) == []
    assert [c[0] for c in con.execute("DESCRIBE outcome").fetchall()] == [
        "new_key",
        "other_key",
        "p",
        "outcome",
        "reason",
    ]


def test_without_the_twins_guard_given_names_are_judged_by_probability(con: duckdb.DuckDBPyConnection) -> None:
    """A model trained on data without identifiers learns how often its matches' given
    names differ; decide() then leaves such pairs to the probability."""
    score(con, 2, 1, 0.99, given=ELSE)
    score(con, 3, 1, 0.6, given=ELSE)
    score(con, 4, 1, 0.99, given=GIVEN_LOOSE_LEVELS[0])
    score(con, 5, 1, 0.99, given=ELSE, nhs=DIFFERENT)  # different identifiers still mean different children
    decide(con, LINKAGE, veto_unrelated_given=False)
    assert outcomes(con) == [
        (k(2), k(1), 0.99, "link", "probable_match"),
        (k(3), k(1), 0.6, "review", "probability_between_thresholds"),
        (k(4), k(1), 0.99, "link", "probable_match"),
        (k(5), k(1), 0.99, "none", "identifiers_differ"),
    ]


def test_the_model_says_whether_the_twins_guard_applies() -> None:
    import copy

    from childindex.linkage.model import BUNDLED_MODEL, GIVEN_VETO_MAX_M, LoadedModel, load_model

    bundled = load_model(BUNDLED_MODEL)
    assert bundled.vetoes_unrelated_given_names, "trained on identifiers: matches keep their given names"
    settings = copy.deepcopy(bundled.settings)
    given = next(c for c in settings["comparisons"] if c["output_column_name"] == "given")
    given["comparison_levels"][-1]["m_probability"] = 2 * GIVEN_VETO_MAX_M
    # Trained on identifiers: the guard holds whatever the given names' m.
    assert LoadedModel(settings, 1, 1000, sessions=("nhs_key", "given+family")).vetoes_unrelated_given_names
    # Trained without them, on data whose matches often have other given names: no guard.
    assert not LoadedModel(settings, 1, 1000, sessions=("given+family", "dob")).vetoes_unrelated_given_names
    given["comparison_levels"][-1]["m_probability"] = GIVEN_VETO_MAX_M / 2
    assert LoadedModel(settings, 1, 1000, sessions=("given+family", "dob")).vetoes_unrelated_given_names


def test_a_reason_without_an_outcome_fails_instead_of_queueing(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new reason must be given its outcome (and, sent for review, its explanation in
    linkage.review.REASONS): without one the night's SQL stops rather than queue a pair."""
    monkeypatch.delitem(OUTCOME_OF, "given_names_resemble")
    score(con, 2, 1, 0.99, given=GIVEN_LOOSE_LEVELS[0])
    with pytest.raises(duckdb.InvalidInputException, match="a linkage reason without an outcome"):
        decide(con, LINKAGE)
