from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from tests.helpers import child, drop, org_of, render
from tests.registries import use_registry_text

N1, N2 = date(2026, 11, 24), date(2026, 11, 25)


def _load(settings, night: date, files: dict[str, list[dict]]) -> dict:
    """Each organisation's rows (keyed by its code, or by a sector: the tests' registry's
    organisation of it) through intake in its own contract, then linkage."""
    for name, rows in files.items():
        code = org_of(name)
        drop(settings, code, render(settings.registry.get(code).contract, rows), night=night)
        run_intake(settings, code, night)
    return link_pending(settings, night).as_dict()


def _clusters(settings) -> dict[str, str]:
    """source key -> child id of every record."""
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.organisation, c.given_name, s.child_id, s.source_key FROM source_record s "
                "JOIN involvement i USING (source_key) JOIN child c ON c.child_id = s.child_id"
            )
        ).all()
    return {r.source_key: r.child_id for r in rows}


def _child_of(settings, organisation: str, local_id: str) -> str:
    """The child id of an organisation's record (a code, or a sector: the tests' registry's)."""
    from childindex.staging.pseudonymise import hmac_hex, local_id_domain

    key = hmac_hex(settings.key, local_id_domain(org_of(organisation)), local_id)
    with engine_for(settings.index_url).connect() as conn:
        return conn.execute(text("SELECT child_id FROM source_record WHERE source_key = :k"), {"k": key}).scalar_one()


def test_identifiers_then_name_and_date_of_birth_link_across_sectors(settings) -> None:
    a = child(1)
    result = _load(
        settings,
        N1,
        {
            "health": [a],
            # Social care has the NHS number and a UPN: links health (NHS) to education (UPN).
            "social_care": [child(1, "social_care", upn=a["upn"], given_name="Renamed")],
            "education": [child(1, "education", nhs_number=None)],
        },
    )
    assert result["records"] == 3 and result["children_created"] == 1
    ids = {_child_of(settings, sec, child(1, sec)["local_id"]) for sec in ("health", "social_care", "education")}
    assert len(ids) == 1


def test_name_and_date_of_birth_links_a_record_without_identifiers(settings) -> None:
    _load(
        settings,
        N1,
        {
            "health": [child(1)],
            "social_care": [child(1, "social_care", nhs_number=None, upn=None, given_name=" given-bA ")],
        },
    )
    # Normalisation: case, spaces and punctuation do not matter for the exact rule.
    assert _child_of(settings, "health", "H0000001") == _child_of(settings, "social_care", "S0000001")


def test_twins_are_never_merged(settings) -> None:
    twin_a = child(1, given_name="Oliver", family_name="Smith", date_of_birth=date(2015, 3, 3))
    twin_b = child(2, given_name="Olivia", family_name="Smith", date_of_birth=date(2015, 3, 3))
    _load(settings, N1, {"health": [twin_a, twin_b]})
    assert _child_of(settings, "health", "H0000001") != _child_of(settings, "health", "H0000002")


def test_same_name_and_birthday_with_conflicting_nhs_numbers_stay_apart(settings) -> None:
    a = child(1, given_name="Jack", family_name="Jones", date_of_birth=date(2014, 5, 5), sex="M")
    b = child(2, given_name="Jack", family_name="Jones", date_of_birth=date(2014, 5, 5), sex="M")
    # A third record with no identifier and the same name is ambiguous: linked to neither,
    # and both pairs go to review.
    c = child(
        3,
        "social_care",
        given_name="Jack",
        family_name="Jones",
        date_of_birth=date(2014, 5, 5),
        sex="M",
        nhs_number=None,
        upn=None,
    )
    result = _load(settings, N1, {"health": [a, b], "social_care": [c]})
    ids = {
        _child_of(settings, "health", "H0000001"),
        _child_of(settings, "health", "H0000002"),
        _child_of(settings, "social_care", "S0000003"),
    }
    assert len(ids) == 3
    assert result["links_undone"] == 2 and result["review_items"] == 2
    with engine_for(settings.index_url).connect() as conn:
        reasons = conn.execute(text("SELECT DISTINCT reason FROM review_item")).scalars().all()
    assert reasons == ["conflicting_group"]


def test_ids_are_stable_across_nights_and_merges_are_recorded(settings) -> None:
    a, b = child(1), child(2)
    # Night 1: school knows child 1 under another surname at an older address, without an
    # NHS number: too different from health's record to link.
    pupil = child(1, "education", nhs_number=None, family_name="Otherly", postcode="BD1 1AA")
    _load(settings, N1, {"health": [a], "education": [pupil]})
    id_a, id_b = _child_of(settings, "health", "H0000001"), _child_of(settings, "education", "E0000001")
    assert id_a != id_b
    # Night 2: a health record re-sent unchanged, and a social care record that proves
    # education's pupil is child 1 (the UPN) and health's child 1 (the NHS number).
    sc = child(1, "social_care", nhs_number=a["nhs_number"], upn=pupil["upn"])
    result = _load(settings, N2, {"health": [a, b], "social_care": [sc]})
    assert result["merges"] == 1
    survivor = min(id_a, id_b)
    assert _child_of(settings, "health", "H0000001") == survivor
    assert _child_of(settings, "education", "E0000001") == survivor
    with engine_for(settings.index_url).connect() as conn:
        hist = conn.execute(text("SELECT old_child_id, new_child_id, reason, night FROM child_id_history")).all()
        kids = {r[0] for r in conn.execute(text("SELECT child_id FROM child")).all()}
    assert [tuple(h) for h in hist] == [(max(id_a, id_b), survivor, "merge:linkage", N2.isoformat())]
    assert max(id_a, id_b) not in kids, "a merged-away id leaves the child table"


def test_rerun_with_nothing_pending_changes_nothing(settings) -> None:
    _load(settings, N1, {"health": [child(1), child(2)]})
    before = _clusters(settings)
    again = link_pending(settings, N1).as_dict()
    assert again["files"] == 0 and _clusters(settings) == before


def test_a_night_is_one_transaction(settings, monkeypatch) -> None:
    """A failure mid-publish leaves the previous index and the ledger as they were."""
    import pytest

    from childindex.index import store

    _load(settings, N1, {"health": [child(1)]})
    before = _clusters(settings)
    drop(settings, "health", render("health", [child(1), child(5)]), night=N2)
    run_intake(settings, org_of("health"), N2)

    def boom(*_a, **_k):
        raise RuntimeError("simulated failure after the first writes")

    monkeypatch.setattr(store.Ledger, "mark_linked", staticmethod(boom))
    with pytest.raises(RuntimeError, match="simulated"):
        link_pending(settings, N2)
    assert _clusters(settings) == before
    monkeypatch.undo()
    assert link_pending(settings, N2).records == 2


def test_a_corrected_record_that_no_longer_matches_is_split_off(settings) -> None:
    # Night 1: health and social care agree on name and date of birth (no shared identifier).
    _load(settings, N1, {"health": [child(1)], "social_care": [child(1, "social_care", nhs_number=None, upn=None)]})
    old = _child_of(settings, "health", "H0000001")
    assert _child_of(settings, "social_care", "S0000001") == old
    # Night 2: social care corrects the child's date of birth: the two no longer match.
    result = _load(
        settings,
        N2,
        {"social_care": [child(1, "social_care", nhs_number=None, upn=None, date_of_birth=date(2013, 3, 3))]},
    )
    assert result["splits"] == 1
    ids = {_child_of(settings, "health", "H0000001"), _child_of(settings, "social_care", "S0000001")}
    assert len(ids) == 2 and old in ids
    [new] = ids - {old}
    with engine_for(settings.index_url).connect() as conn:
        hist = [tuple(r) for r in conn.execute(text("SELECT old_child_id, new_child_id, reason FROM child_id_history"))]
        n_children = conn.execute(text("SELECT count(*) FROM child")).scalar_one()
    assert hist == [(old, new, "split:changed")]
    assert n_children == 2


def test_database_errors_never_quote_a_childs_data(settings) -> None:
    """SQLAlchemy would put bound values in the message; the engines hide them."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from childindex.index.models import Child

    row = {
        "child_id": "C1",
        "given_name": "Qzcanaryexception",
        "family_name": "Qzcanaryfamily",
        "date_of_birth": date(2015, 1, 1),
        "sex": "F",
        "postcode": "LS6 2AB",
        "first_seen": N1,
        "last_seen": N1,
    }
    with engine_for(settings.index_url).begin() as conn:
        conn.execute(Child.__table__.insert(), [row])
    with pytest.raises(IntegrityError) as info, engine_for(settings.index_url).begin() as conn:
        conn.execute(Child.__table__.insert(), [row])
    text_of_error = str(info.value) + repr(info.value)
    assert "Qzcanary" not in text_of_error and "2015-01-01" not in text_of_error
    assert "hidden due to hide_parameters" in text_of_error


# ---------------------------------------------------------------------------------------
# Organisations: a child's old and new authority, duplicate registrations

# Two authority areas; health serves both, each area has its own education and social care
# (the new authority's social care sends another layout of the same sector).
TWO_AUTHORITIES = """
version: 1
areas:
  - {code: E06000047, name: County Durham, la_number: 840, postcode_districts: [DH1, LS6]}
  - {code: E06000005, name: Darlington, la_number: 841, postcode_districts: [DL1]}
organisations:
  - {code: RH1, name: Test community health (synthetic), sector: health, contract: health_chis,
     areas: [E06000047, E06000005]}
  - {code: "840", name: Durham education (synthetic), sector: education, contract: education_mis,
     areas: [E06000047]}
  - {code: "841", name: Darlington education (synthetic), sector: education, contract: education_mis,
     areas: [E06000005]}
  - {code: E06000047, name: Durham social care (synthetic), sector: social_care, contract: social_care_cms,
     areas: [E06000047]}
  - {code: E06000005, name: Darlington social care (synthetic), sector: social_care, contract: social_care_ehm,
     areas: [E06000005]}
"""


@pytest.fixture()
def two_authorities(data_dir, tmp_path, monkeypatch):
    from childindex.index.db import migrate

    s = use_registry_text(monkeypatch, tmp_path, TWO_AUTHORITIES)
    migrate(s.index_url)
    return s


def _reader_rows(settings) -> list[tuple]:
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(
            text("SELECT child_id, organisation, organisation_name, sector, area, area_name FROM reader_involvement")
        ).all()
    return sorted(tuple(r) for r in rows)


def test_a_child_who_moved_authority_is_one_child_in_both_organisations_of_a_sector(two_authorities) -> None:
    settings = two_authorities
    # Night 1: the old authority's social care and school know the child in Durham.
    old_sc = child(1, "social_care", postcode="DH1 1AA", involvement_end=date(2026, 11, 1))
    old_school = child(1, "education", postcode="DH1 1AA", involvement_end=date(2026, 10, 31))
    _load(settings, N1, {"E06000047": [old_sc], "840": [old_school]})
    # Night 2: the new authority's (another case system, its own local ids) and its school.
    new_sc = child(1, "social_care", local_id="DAR-000017", postcode="DL1 1AA", upn=None)
    new_school = child(1, "education", local_id="P99000001", postcode="DL1 1AA")
    result = _load(settings, N2, {"E06000005": [new_sc], "841": [new_school]})
    assert result["records"] == 2 and result["children_created"] == 0
    ids = {
        _child_of(settings, "E06000047", old_sc["local_id"]),
        _child_of(settings, "E06000005", "DAR-000017"),
        _child_of(settings, "840", old_school["local_id"]),
        _child_of(settings, "841", "P99000001"),
    }
    assert len(ids) == 1
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM child")).scalar_one() == 1
    # The reader sees one child with each organisation by name, and the area it is in.
    [child_id] = ids
    assert _reader_rows(settings) == sorted(
        [
            (child_id, "E06000047", "Durham social care (synthetic)", "social_care", "E06000047", "County Durham"),
            (child_id, "840", "Durham education (synthetic)", "education", "E06000047", "County Durham"),
            (child_id, "E06000005", "Darlington social care (synthetic)", "social_care", "E06000005", "Darlington"),
            (child_id, "841", "Darlington education (synthetic)", "education", "E06000005", "Darlington"),
        ]
    )


def test_the_reader_view_names_the_organisation_and_the_area_it_placed_a_record_in(two_authorities) -> None:
    settings = two_authorities
    # Health serves both areas: each record is in the area of its postcode district.
    _load(settings, N1, {"RH1": [child(1, postcode="DH1 1AA"), child(2, postcode="DL1 2BB")]})
    rows = {(r[1], r[2], r[3], r[4], r[5]) for r in _reader_rows(settings)}
    assert rows == {
        ("RH1", "Test community health (synthetic)", "health", "E06000047", "County Durham"),
        ("RH1", "Test community health (synthetic)", "health", "E06000005", "Darlington"),
    }
    with engine_for(settings.index_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organisation")).scalar_one() == 5
        assert conn.execute(text("SELECT count(*) FROM area")).scalar_one() == 2


def test_duplicate_registrations_within_one_organisation_are_one_child(settings) -> None:
    # The same child registered twice by one organisation: two local ids, one NHS number.
    first = child(1)
    again = child(1, local_id="H0000099")
    other = child(2)
    _load(settings, N1, {"health": [first, again, other]})
    assert _child_of(settings, "health", "H0000001") == _child_of(settings, "health", "H0000099")
    assert _child_of(settings, "health", "H0000002") != _child_of(settings, "health", "H0000001")
    # A third registration on a later night joins the child the index already holds.
    result = _load(settings, N2, {"health": [child(1, local_id="H0000123")]})
    assert result["children_created"] == 0 and result["merges"] == 0
    assert _child_of(settings, "health", "H0000123") == _child_of(settings, "health", "H0000001")
