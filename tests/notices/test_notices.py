"""Nightly involvement notices: who is told, what a notice says, retractions, idempotence."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.notices.files import notice_paths
from childindex.notices.night import send_notices
from tests.helpers import child, drop, org_of, render

N1, N2, N3 = date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)


def _night(settings, night: date, files: dict[str, list[dict]]):
    for name, rows in files.items():
        code = org_of(name)
        drop(settings, code, render(settings.registry.get(code).contract, rows), night=night)
        run_intake(settings, code, night)
    link_pending(settings, night)
    return send_notices(settings, night)


def _document(settings, organisation: str, night: date) -> dict:
    """The organisation's notices of the night, checked against the published JSON Schema."""
    import jsonschema

    from childindex.notices.files import SCHEMA_FILE

    path, _ = notice_paths(settings.outbox(org_of(organisation)), night)
    document = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
    return document


def test_a_second_organisation_on_a_known_child_tells_both(settings) -> None:
    first = _night(settings, N1, {"health": [child(1), child(2)]})
    assert first.notices == 0 and first.pending_records == 2
    second = _night(settings, N2, {"social_care": [child(1, "social_care")]})
    assert second.notices == 2 and second.children_notified == 1 and second.organisations == 2
    health = _document(settings, "health", N2)
    [notice] = health["notices"]
    assert notice["kind"] == "notice" and notice["references"] == ["H0000001"]
    [inv] = notice["involvements"]
    assert inv["organisation_code"] == org_of("social_care") and inv["new"] is True
    assert inv["service"] == "child_in_need" and inv["contact_route"] == "0113 496 0001"
    social = _document(settings, "social_care", N2)
    assert social["notices"][0]["references"] == ["S0000001"]
    assert social["notices"][0]["involvements"][0]["organisation_code"] == org_of("health")
    # Nothing pending any more: a rerun of the night writes and remembers nothing new.
    again = send_notices(settings, N2)
    assert again.pending_records == 0 and again.notices == 0
    assert _document(settings, "health", N2) == health


def test_rerun_of_the_same_state_adds_no_duplicates(settings) -> None:
    _night(settings, N1, {"health": [child(1)]})
    _night(settings, N2, {"social_care": [child(1, "social_care")]})
    with engine_for(settings.index_url).begin() as conn:
        told = conn.execute(text("SELECT count(*) FROM notice_told")).scalar_one()
        # As if the night's commit had been lost after the files were written.
        conn.execute(text("DELETE FROM notice_told"))
        conn.execute(text("INSERT INTO notice_pending SELECT source_key, :n FROM source_record"), {"n": N2})
    before = _document(settings, "health", N2)
    send_notices(settings, N2)
    assert _document(settings, "health", N2) == before
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notice_told")).scalar_one() == told


def _keys(settings, organisation: str, local_id: str) -> str:
    from childindex.staging.pseudonymise import hmac_hex, local_id_domain

    return hmac_hex(settings.key, local_id_domain(org_of(organisation)), local_id)


def test_a_split_by_a_persons_decision_retracts_what_both_were_told(settings) -> None:
    _night(settings, N1, {"health": [child(1)], "social_care": [child(1, "social_care")]})
    assert _document(settings, "health", N1)["notices"][0]["kind"] == "notice"
    key_a, key_b = sorted((_keys(settings, "health", "H0000001"), _keys(settings, "social_care", "S0000001")))
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO link_decision (key_a, key_b, decision, decided_by, decided_at) "
                "VALUES (:a, :b, 'non_match', 'tester', :at)"
            ),
            {"a": key_a, "b": key_b, "at": datetime(2026, 11, 24, 12)},
        )
    result = _night(settings, N2, {"education": [child(50, "education")]})
    assert result.retractions == 2 and result.notices == 0
    for organisation, reference, other in (
        ("health", "H0000001", "social_care"),
        ("social_care", "S0000001", "health"),
    ):
        [retraction] = _document(settings, organisation, N2)["notices"]
        assert retraction["kind"] == "retraction" and retraction["references"] == [reference]
        assert [i["organisation_code"] for i in retraction["involvements"]] == [org_of(other)]
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notice_told")).scalar_one() == 0
    # Withdrawn once: the next night retracts nothing again.
    assert _night(settings, N3, {"education": [child(51, "education")]}).retractions == 0


def test_a_record_sent_again_with_other_details_moves_and_is_retracted(settings) -> None:
    _night(settings, N1, {"health": [child(1), child(2)], "social_care": [child(1, "social_care", nhs_number=None,
                                                                                 upn=None)]})  # fmt: skip
    # Social care corrects its record: it was child 2 all along.
    fixed = child(2, "social_care", local_id="S0000001", nhs_number=child(2)["nhs_number"], upn=None)
    result = _night(settings, N2, {"social_care": [fixed]})
    assert result.retractions == 2 and result.notices == 2
    social = {n["kind"]: n for n in _document(settings, "social_care", N2)["notices"]}
    assert social["retraction"]["references"] == social["notice"]["references"] == ["S0000001"]
    health = {n["references"][0]: n["kind"] for n in _document(settings, "health", N2)["notices"]}
    assert health == {"H0000001": "retraction", "H0000002": "notice"}


def test_ended_involvements_inside_the_look_back_are_announced_and_older_ones_are_not(settings) -> None:
    recent = child(1, "social_care", involvement_end=N2 - timedelta(days=200))
    old = child(2, "social_care", involvement_end=N2 - timedelta(days=400))
    _night(settings, N1, {"social_care": [recent, old]})
    result = _night(settings, N2, {"health": [child(1), child(2)]})
    assert result.notices == 2  # child 1 only: health and social care
    [notice] = _document(settings, "health", N2)["notices"]
    assert notice["references"] == ["H0000001"]
    assert notice["involvements"][0]["end_date"] == (N2 - timedelta(days=200)).isoformat()
    # Social care's involvement with child 2 ended 400 days ago: it is told nothing either.
    assert [n["references"] for n in _document(settings, "social_care", N2)["notices"]] == [["S0000001"]]


def test_a_shielded_involvement_is_announced_only_as_a_sensitive_service(settings) -> None:
    _night(settings, N1, {"health": [child(1, sensitive="Y", contact_route="0300 555 0100")]})
    _night(settings, N2, {"social_care": [child(1, "social_care")]})
    [notice] = _document(settings, "social_care", N2)["notices"]
    [inv] = notice["involvements"]
    assert inv["service"] == "a sensitive service" and inv["contact_route"] == "0300 555 0100"
    assert {k for k, v in inv.items() if v is not None} == {"new", "service", "contact_route"}


def test_withhold_tells_no_one_of_a_shielded_involvement(settings, monkeypatch) -> None:
    from childindex.settings import load_settings

    monkeypatch.setenv("CHILDINDEX_NOTICES__SENSITIVE", "withhold")
    settings = load_settings()
    _night(settings, N1, {"health": [child(1, sensitive="Y")]})
    result = _night(settings, N2, {"social_care": [child(1, "social_care")]})
    # The shielded service is told of social care; social care learns nothing of it.
    assert result.notices == 1
    assert not notice_paths(settings.outbox(org_of("social_care")), N2)[0].exists()
    [notice] = _document(settings, "health", N2)["notices"]
    assert notice["involvements"][0]["organisation_code"] == org_of("social_care")


def test_a_child_who_moves_authority_is_announced_at_the_old_and_the_new_organisations(
    data_dir, tmp_path, monkeypatch
) -> None:
    from childindex.index.db import migrate
    from tests.registries import TWO_HEALTH_ORGANISATIONS, use_registry_text

    registry = TWO_HEALTH_ORGANISATIONS + (
        "  - {code: E06000047, name: Durham children's social care (synthetic), sector: social_care,\n"
        "     contract: social_care_cms, areas: [E06000047]}\n"
    )
    settings = use_registry_text(monkeypatch, tmp_path / "registry", registry)
    migrate(settings.index_url)
    durham, darlington, social = "RH1", "RX2", "E06000047"
    _night(settings, N1, {durham: [child(1)], social: [child(1, "social_care")]})
    moved = child(1, postcode="DL1 1AA", involvement_start=N2)
    left = child(1, involvement_end=N2 - timedelta(days=5))
    result = _night(settings, N2, {darlington: [moved], durham: [left]})
    assert result.notices == 3 and result.children_notified == 1

    def told(code: str) -> dict[str, dict]:
        [notice] = _document(settings, code, N2)["notices"]
        assert notice["references"] == [("S" if code == social else "H") + "0000001"]
        return {i["organisation_code"]: i for i in notice["involvements"]}

    new = told(darlington)
    assert {c: (i["area_code"], i["new"]) for c, i in new.items()} == {
        durham: ("E06000047", True),
        social: ("E06000047", True),
    }
    assert new[durham]["end_date"] == (N2 - timedelta(days=5)).isoformat()
    assert new[durham]["area_name"] == "County Durham" and new[durham]["organisation_name"].startswith("Durham")
    for old in (durham, social):
        involvements = told(old)
        assert involvements[darlington]["area_code"] == "E06000005" and involvements[darlington]["new"] is True
        assert all(i["new"] is False for c, i in involvements.items() if c != darlington)
    with engine_for(settings.index_url).connect() as conn:
        nights = conn.execute(text("SELECT night, count(*) FROM notice_told GROUP BY night ORDER BY night")).all()
    assert [(date.fromisoformat(str(n)), k) for n, k in nights] == [(N1, 2), (N2, 4)]


def test_notice_files_and_their_ledger_go_after_thirty_days_even_a_file_that_lies_about_its_date(
    data_dir, tmp_path, monkeypatch
) -> None:
    import os

    from childindex.index.db import migrate
    from childindex.retention import run_retention
    from tests.registries import registry_with, use_registry

    # Health's outbox is outside OUTBOX_ROOT: retention finds it through the registry.
    elsewhere = tmp_path / "elsewhere" / "health-outbox"
    settings = use_registry(monkeypatch, tmp_path / "registry", data=registry_with(RH1={"outbox": str(elsewhere)}))
    migrate(settings.index_url)
    _night(settings, N1, {"health": [child(1)]})
    _night(settings, N2, {"social_care": [child(1, "social_care")]})
    health_json, health_csv = notice_paths(elsewhere, N2)
    assert health_json.exists() and health_csv.exists()
    receipt = next(elsewhere.glob("*.receipt.json"))
    # A file no ledger lists, named for a night years ahead but written long ago.
    liar = elsewhere / "notices" / "notices-2031-01-01.json"
    liar.write_text("{}")
    old = (N2 - timedelta(days=60) - date(1970, 1, 1)).days * 86400
    os.utime(liar, (old, old))

    def deleted(days: int) -> dict[str, dict]:
        return {r["rule"]: r for r in run_retention(settings, N2 + timedelta(days=days))["rules"]}

    assert deleted(29)["notices"]["files_deleted"] == 1  # only the liar
    assert not liar.exists() and health_json.exists()
    rules = deleted(31)
    assert rules["notices"]["files_deleted"] == 4  # JSON and CSV at health and at social care
    assert rules["notice_ledger"]["rows_deleted"] == {"notice_ledger": 2}
    assert not health_json.exists() and receipt.exists(), "receipts keep their own, longer rule"
    assert deleted(91)["receipts"]["files_deleted"] >= 2 and not receipt.exists()
