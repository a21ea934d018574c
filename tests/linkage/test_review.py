"""The clerical review queue: what reaches it, how it is worked, and that decisions win."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from childindex.cli import app
from childindex.index.db import engine_for
from childindex.keys.rotation import rotate_key
from childindex.linkage import review as rq
from childindex.linkage.graph import REVIEW_REASONS
from childindex.linkage.scoring import OUTCOME_OF
from childindex.settings import load_settings
from tests.helpers import ORG, child, nhs, upn
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


# ---------------------------------------------------------------------------------------
# Why an item waits, and how its identifiers compare.

N4 = N3 + timedelta(days=1)
NEW_KEY = "rotated-test-key-" + "0f1e2d3c4b5a6978" * 3  # synthetic data only
WIDE = {"COLUMNS": "400"}  # one line per row
DOCS = Path(__file__).resolve().parents[2] / "docs" / "linkage.md"


def _rows(output: str) -> list[list[str]]:
    """The rows of ``review --list`` (wide): its cells, split where two spaces part them."""
    lines = [line.strip() for line in output.splitlines()]
    return [re.split(r"\s{2,}", line) for line in lines if re.match(r"\d+\s+\d{4}-\d\d-\d\d\s", line)]


def _secrets(settings) -> list[str]:
    """Every identifier and pseudonym the index holds: none may reach the command's output."""
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(text("SELECT source_key, nhs_key, upn_key, match_key FROM source_record")).all()
    return [value for row in rows for value in row if value] + [nhs(1), nhs(2), upn(1), upn(2), upn(3)]


def test_every_reason_linkage_can_queue_is_explained() -> None:
    queued = {reason for reason, outcome in OUTCOME_OF.items() if outcome == "review"} | set(REVIEW_REASONS)
    assert (
        queued
        == set(rq.REASONS)
        == {
            "probability_between_thresholds",
            "given_names_resemble",
            "conflicting_group",
            "conflicting_decision",
            "decided_match_conflicts",
        }
    )
    for code, reason in rq.REASONS.items():
        assert reason.code == code
        # A few plain words beside the code, and whole sentences for the docs.
        assert 10 <= len(reason.label) <= 60 and "_" not in reason.label, code
        assert reason.meaning.endswith(".") and reason.check.endswith((".", "?")), code
    assert rq.reason_of("given_names_resemble") is rq.REASONS["given_names_resemble"]
    assert rq.reason_of("gone_reason").label == "not explained by this version"


def test_the_docs_table_of_reasons_is_the_catalogue() -> None:
    section = DOCS.read_text(encoding="utf-8").split("### Reasons", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in rows]
    assert documented == [(f"`{r.code}`", r.meaning, r.check) for r in rq.REASONS.values()]


def test_a_conflicting_group_says_why_in_plain_words_and_no_identifier(settings) -> None:
    """The ambiguous night: the social care record links both health records at a
    probability near 1; the group would hold two NHS numbers, so both links wait."""
    _ambiguous_night(settings)
    [first, second] = rq.open_items(settings.index_url)
    assert first.match_probability > 0.99 and second.match_probability > 0.99
    listed = runner.invoke(app, ["review", "--list"], env=WIDE)
    assert listed.exit_code == 0, listed.output
    assert _rows(listed.output) == [
        [str(i.id), N1.isoformat(), f"{i.match_probability:.4f}", "missing on one", "missing on both",
         "conflicting_group: a chain of links would join two NHS numbers or UPNs"]
        for i in (first, second)
    ]  # fmt: skip
    shown = runner.invoke(app, ["review", "--item", str(first.id)], input="k\n", env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "reason: conflicting_group: a chain of links would join two NHS numbers or UPNs\n" in shown.output
    assert f"check: {rq.REASONS['conflicting_group'].check}\n" in shown.output
    assert "NHS number: missing on one; UPN: missing on both\n" in shown.output
    assert f"other open items on these records: {second.id}\n" in shown.output
    # --json: the same list, and one item, without a prompt (no input is given).
    as_json = json.loads(runner.invoke(app, ["review", "--list", "--json"]).output)
    assert as_json["open"] == 2 and [i["id"] for i in as_json["items"]] == [first.id, second.id]
    assert {(i["reason"], i["nhs_number"], i["upn"]) for i in as_json["items"]} == {
        ("conflicting_group", "missing on one", "missing on both")
    }
    one = runner.invoke(app, ["review", "--item", str(second.id), "--json"])
    assert one.exit_code == 0 and json.loads(one.output)["item"]["related"] == [first.id]
    # Canaries: names only in the item's side-by-side fields, identifiers never.
    assert "Jack" not in listed.output and "Jones" not in listed.output
    assert "Jack" not in json.dumps(as_json)
    for secret in _secrets(settings):
        assert secret not in listed.output and secret not in shown.output and secret not in one.output


def test_twins_a_person_called_the_same_child_show_that_their_nhs_numbers_differ(settings, monkeypatch) -> None:
    """Twins (the same everything, given names alike) while one lacked its NHS number:
    the reviewer says "same child". When health sends that NHS number, the decision
    conflicts with it and the pair comes back, showing "NHS number: differ" (and still
    after key rotation)."""
    same = {"family_name": "Jones", "date_of_birth": date(2014, 5, 5), "sex": "F"}
    # Jaro-Winkler 0.8 to 0.9 only: no nickname, short form or single edit apart.
    oliver = child(1, given_name="Oliver", **same)
    olivia = child(2, given_name="Olivia", nhs_number=None, **same)
    _load(settings, N1, {"health": [oliver, olivia]})
    [resemble] = rq.open_items(settings.index_url)
    assert (resemble.reason, resemble.nhs_number, resemble.upn) == (
        "given_names_resemble", "missing on one", "missing on both",
    )  # fmt: skip
    listed = runner.invoke(app, ["review", "--list"], env=WIDE)
    assert _rows(listed.output)[0][3:] == [
        "missing on one", "missing on both",
        "given_names_resemble: given names only resemble each other, no shared identifier",
    ]  # fmt: skip
    decided = runner.invoke(app, ["review", "--decide", "match", "--reviewer", "tester"])
    assert decided.exit_code == 0 and rq.open_count(settings.index_url) == 0
    _load(settings, N2, {"health": [child(2, given_name="Olivia", nhs_number=nhs(2), **same)]})
    [back] = rq.open_items(settings.index_url)
    assert (back.night, back.reason, back.nhs_number, back.upn) == (
        N2, "decided_match_conflicts", "differ", "missing on both",
    )  # fmt: skip
    # Different NHS numbers put the pair far below the review threshold: the model's score
    # is not kept, and the person's decision alone brought it back.
    assert back.match_probability is None
    assert _rows(runner.invoke(app, ["review", "--list"], env=WIDE).output)[0][2:] == [
        "not scored", "differ", "missing on both", "decided_match_conflicts: a person's \"same child\" conflicts",
    ]  # fmt: skip
    assert _child_of(settings, "health", "H0000001") != _child_of(settings, "health", "H0000002")
    # Key rotation re-keys both records' pseudonyms alike: the comparison still holds.
    monkeypatch.setenv("CHILDINDEX_PSEUDONYMISATION_KEY", NEW_KEY)
    rotate_key(settings, NEW_KEY.encode(), N2)
    settings = load_settings()
    assert rq.open_items(settings.index_url) == [back]
    shown = runner.invoke(app, ["review"], input="d\n", env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "NHS number: differ; UPN: missing on both\n" in shown.output
    assert 'reason: decided_match_conflicts: a person\'s "same child" conflicts\n' in shown.output
    for secret in _secrets(settings):
        assert secret not in shown.output
    # "Different children" now: the pair stays apart and the queue stays empty.
    _load(settings, N3, {"education": [child(40, "education")]})
    assert rq.open_count(settings.index_url) == 0
    assert _child_of(settings, "health", "H0000001") != _child_of(settings, "health", "H0000002")


def test_contradicting_decisions_come_back_once_unscored_and_the_night_still_publishes(settings) -> None:
    """ "Same child" on both items of the ambiguous night cannot both hold (the health
    records have different NHS numbers). The next nights undo both decisions and send the
    pairs back: once, without a probability (neither record came), and linkage publishes."""
    _ambiguous_night(settings)
    for _ in range(2):
        assert runner.invoke(app, ["review", "--decide", "match", "--reviewer", "tester"]).exit_code == 0
    assert rq.open_count(settings.index_url) == 0
    result = _load(settings, N2, {"education": [child(40, "education")]})
    assert result["links_undone"] == 2 and result["review_items"] == 2
    back = rq.open_items(settings.index_url)
    assert [(i.night, i.match_probability, i.reason, i.nhs_number, i.upn) for i in back] == [
        (N2, None, "decided_match_conflicts", "missing on one", "missing on both"),
    ] * 2
    listed = runner.invoke(app, ["review", "--list"], env=WIDE)
    assert [row[2] for row in _rows(listed.output)] == ["not scored", "not scored"]
    _load(settings, N3, {"education": [child(41, "education")]})
    assert [i.id for i in rq.open_items(settings.index_url)] == [i.id for i in back], "not queued again"
    h1 = _child_of(settings, "health", "H0000001")
    assert len({_child_of(settings, "social_care", "S0000003"), h1, _child_of(settings, "health", "H0000002")}) == 3
    # The reviewer settles it: "different children" on one pair, and the other pair's
    # "same child" now stands alone.
    assert runner.invoke(app, ["review", "--item", str(back[0].id), "--decide", "non_match"]).exit_code == 0
    _load(settings, N4, {"education": [child(42, "education")]})
    sc = _child_of(settings, "social_care", "S0000003")
    assert (sc == h1) != (sc == _child_of(settings, "health", "H0000002"))
