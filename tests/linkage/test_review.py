"""The clerical review queue: what reaches it, how it is worked, and that decisions win."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from typer.testing import CliRunner

from childindex.cli import app
from childindex.index.db import engine_for
from childindex.linkage import review as rq
from tests.helpers import ORG, child
from tests.linkage.test_linkage import N1, N2, _child_of, _load

N3 = N2 + timedelta(days=1)
runner = CliRunner()


def _ambiguous_night(settings) -> dict:
    """Two health records of different children (same name, birthday, address; different
    NHS numbers) and a social care record, without identifiers, that fits both."""
    same = {"given_name": "Jack", "family_name": "Jones", "date_of_birth": date(2014, 5, 5), "sex": "M"}
    sc = child(3, "social_care", nhs_number=None, upn=None, **same)
    return _load(settings, N1, {"health": [child(1, **same), child(2, **same)], "social_care": [sc]})


def test_an_ambiguous_record_waits_for_a_person(settings) -> None:
    result = _ambiguous_night(settings)
    assert result["review_items"] == 2 and rq.open_count(settings.index_url) == 2
    listed = runner.invoke(app, ["review", "--list"])
    assert listed.exit_code == 0 and "2 open" in listed.output
    assert "Jack" not in listed.output, "the list shows ids and scores, not people"
    shown = runner.invoke(app, ["review"], input="k\n")
    assert shown.exit_code == 0
    for expected in ("tonight's record", "record in the index", "Jack", "Jones", "2014-05-05", "conflicting_group"):
        assert expected in shown.output
    assert rq.open_count(settings.index_url) == 2, "skipping decides nothing"


def test_a_decision_wins_on_every_later_night(settings) -> None:
    _ambiguous_night(settings)
    sc = _child_of(settings, "social_care", "S0000003")
    h1, h2 = _child_of(settings, "health", "H0000001"), _child_of(settings, "health", "H0000002")
    assert len({sc, h1, h2}) == 3
    # The reviewer says the social care record is the same child as one health record.
    first = rq.item(settings.index_url)
    assert {first.new["organisation"], first.other["organisation"]} == {ORG["health"], ORG["social_care"]}
    with engine_for(settings.index_url).connect() as conn:
        [health_key] = conn.execute(
            text(
                "SELECT s.source_key FROM review_item r JOIN source_record s "
                "ON s.source_key IN (r.new_key, r.other_key) WHERE r.id = :i AND s.organisation = :health"
            ),
            {"i": first.id, "health": ORG["health"]},
        ).scalars()
        local = {
            conn.execute(
                text("SELECT child_id FROM source_record WHERE source_key = :k"), {"k": health_key}
            ).scalar_one()
        }
    partner = "H0000001" if local == {h1} else "H0000002"
    r = runner.invoke(app, ["review", "--item", str(first.id), "--decide", "match", "--reviewer", "tester"])
    assert r.exit_code == 0, r.output
    assert rq.open_count(settings.index_url) == 1
    # Night 2 brings an unrelated record: the decision is applied, the other item stays open.
    _load(settings, N2, {"education": [child(40, "education")]})
    assert _child_of(settings, "social_care", "S0000003") == _child_of(settings, "health", partner)
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT reason FROM child_id_history")).scalars().all() == ["merge:decision"]
    assert _child_of(settings, "social_care", "S0000003") == min(sc, local.pop())
    # Night 3: social care re-sends its record; the model alone would still not link it.
    again = child(3, "social_care", nhs_number=None, upn=None, given_name="Jack", family_name="Jones",
                  date_of_birth=date(2014, 5, 5), sex="M")  # fmt: skip
    _load(settings, N3, {"social_care": [again]})
    assert _child_of(settings, "social_care", "S0000003") == _child_of(settings, "health", partner)
    assert _child_of(settings, "health", "H0000001") != _child_of(settings, "health", "H0000002")
    with engine_for(settings.index_url).connect() as conn:
        who = conn.execute(text("SELECT decided_by, decision FROM link_decision")).all()
    assert [tuple(w) for w in who] == [("tester", "match")]


def test_different_children_splits_a_child_that_holds_both(settings) -> None:
    # Health and social care agree on everything but identifiers: linked on night 1.
    _load(settings, N1, {"health": [child(1)], "social_care": [child(1, "social_care", nhs_number=None, upn=None)]})
    old = _child_of(settings, "health", "H0000001")
    assert _child_of(settings, "social_care", "S0000001") == old
    # A practitioner knows better; the decision is recorded against the pair.
    with engine_for(settings.index_url).begin() as conn:
        keys = sorted(r[0] for r in conn.execute(text("SELECT source_key FROM source_record")))
        conn.execute(
            text(
                "INSERT INTO link_decision (key_a, key_b, decision, decided_by, decided_at) "
                "VALUES (:a, :b, 'non_match', 'tester', CURRENT_TIMESTAMP)"
            ),
            {"a": keys[0], "b": keys[1]},
        )
    result = _load(settings, N2, {"education": [child(40, "education")]})
    assert result["splits"] == 1
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT reason FROM child_id_history")).scalars().all() == ["split:decision"]
    ids = {_child_of(settings, "health", "H0000001"), _child_of(settings, "social_care", "S0000001")}
    assert len(ids) == 2 and old in ids
    # And it stays split when both records are sent again.
    _load(settings, N3, {"health": [child(1)], "social_care": [child(1, "social_care", nhs_number=None, upn=None)]})
    assert _child_of(settings, "health", "H0000001") != _child_of(settings, "social_care", "S0000001")


def test_decide_refuses_unknown_items_and_decisions(settings) -> None:
    _ambiguous_night(settings)
    assert runner.invoke(app, ["review", "--item", "999", "--decide", "match"]).exit_code == 2
    assert runner.invoke(app, ["review", "--decide", "maybe"]).exit_code == 2
