"""Issue 18, item 6: linkage is bounded.

A valid file whose rows shared one placeholder date of birth and postcode made ``link``
spill until the disk was full, then fail with a 235-line traceback, leaving every
organisation's staged files unlinked. Now each blocking rule's blocks are counted before
anything is scored (tonight's records with each other and with the index's), tonight's
records in a block over ``CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS`` are held back (their
file stays staged, their sender gets a linkage notice, the night summary, the report and
the night's metrics count them) and everyone else's records link; and spill has a disk
budget (``CHILDINDEX_LINKAGE__SPILL_BUDGET``), past which the night fails with one line and
publishes nothing.

Every test here failed on the code before the fix (verified): the settings did not exist,
and without them the placeholder records were linked (or the night spilled without bound).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from childindex.errors import DiskFull
from childindex.index.db import engine_for
from childindex.intake.process import run_intake
from childindex.linkage import link_pending
from childindex.reports import night_summary
from childindex.reports.data import load_night
from childindex.staging.pseudonymise import hmac_hex, local_id_domain
from tests.helpers import ORG, child, drop, nhs, render

N1, N2 = date(2026, 11, 24), date(2026, 11, 25)
LIMIT = 20_000  # comparisons in one block: a block of 201 of tonight's records is over it
PLACEHOLDER_DOB, PLACEHOLDER_POSTCODE = date(2015, 1, 1), "LS6 2AB"


@pytest.fixture()
def bounded(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """The tests' settings, with a block limit small enough for a few hundred rows."""
    from childindex.index.db import migrate
    from childindex.settings import load_settings

    monkeypatch.setenv("CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS", str(LIMIT))
    s = load_settings()
    s.ensure_dirs()
    migrate(s.index_url)
    return s


def _letters(i: int) -> str:
    """A name made of letters only (names are compared on their letters), distinct per i,
    its initial changing fastest."""
    out, i = "", i + 26 * 26
    while i:
        i, r = divmod(i, 26)
        out += chr(65 + r)
    return out.capitalize()


def _placeholders(n: int, sector: str = "social_care", first: int = 1000, **shared: object) -> list[dict]:
    """``n`` records of different children that share ``shared`` (a placeholder), and
    otherwise differ: names, dates of birth and postcodes."""
    rows = []
    for i in range(first, first + n):
        row = child(
            i,
            sector,
            given_name=_letters(i),
            family_name=_letters(i * 7 + 3),
            nhs_number=None,
            upn=None,
            date_of_birth=date(2010 + i % 10, 1 + i % 12, 1 + i // 12 % 28),
            postcode=f"{'LS6' if i % 2 else 'DH1'} {i % 10}{chr(65 + i // 10 % 26)}{chr(65 + i // 260 % 26)}",
        )
        rows.append({**row, **shared})
    return rows


def _deliver(settings, night: date, files: dict[str, list[dict]]) -> None:
    for sector, rows in files.items():
        drop(settings, sector, render(sector, rows), night=night)
        run_intake(settings, ORG[sector], night)


def _index(settings) -> dict[str, str]:
    """source key -> child id of every record the index holds."""
    with engine_for(settings.index_url).connect() as conn:
        return dict(conn.execute(text("SELECT source_key, child_id FROM source_record")).all())


def _key(settings, sector: str, local_id: str) -> str:
    return hmac_hex(settings.key, local_id_domain(ORG[sector]), local_id)


def _ledger(settings) -> dict[str, tuple[str, str | None]]:
    """organisation -> (status, reason) of its newest file."""
    with engine_for(settings.index_url).connect() as conn:
        rows = conn.execute(text("SELECT organisation, status, reason FROM file_ledger ORDER BY id")).all()
    return {r.organisation: (r.status, r.reason) for r in rows}


def _notice(settings, sector: str, night: date) -> dict | None:
    path = settings.outbox(ORG[sector]) / f"linkage-held-{night.isoformat()}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _normal(sector: str) -> list[dict]:
    """Twenty ordinary children, the same in every sector (they link by NHS number and UPN)."""
    return [child(i, sector) for i in range(1, 21)]


PLACEHOLDERS = {
    # One date of birth and postcode on every row (the incident).
    "date_of_birth_and_postcode": ({"date_of_birth": PLACEHOLDER_DOB, "postcode": PLACEHOLDER_POSTCODE},
                                   "dob_postcode_start", "date of birth and start of postcode"),
    # A placeholder name: the baby is not named yet.
    "placeholder_name": ({"given_name": "Baby", "family_name": "Unknown"}, "names", "given name and family name"),
    # One NHS number (a valid one) keyed on every row: one pseudonym.
    "one_nhs_number": ({"nhs_number": nhs(5000)}, "nhs_number", "NHS number"),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(PLACEHOLDERS))
def test_a_placeholder_block_is_held_back_and_everyone_else_links(bounded, variant: str) -> None:
    settings = bounded
    shared, rule, fields = PLACEHOLDERS[variant]
    # Social care's file: 600 placeholder rows (179,700 comparisons in one block) and five
    # ordinary children; health and education send twenty ordinary children each.
    placeholders = _placeholders(600, **shared)
    _deliver(settings, N1, {"health": _normal("health"), "education": _normal("education"),
                            "social_care": placeholders + [child(i, "social_care") for i in range(1, 6)]})  # fmt: skip
    result = link_pending(settings, N1).as_dict()

    index = _index(settings)
    assert not any(_key(settings, "social_care", r["local_id"]) in index for r in placeholders)
    assert len(index) == 45, "everyone else's records are in the index"
    for i in range(1, 21):
        assert index[_key(settings, "health", f"H{i:07d}")] == index[_key(settings, "education", f"E{i:07d}")]
    for i in range(1, 6):  # the ordinary children of the same file link too
        assert index[_key(settings, "social_care", f"S{i:07d}")] == index[_key(settings, "health", f"H{i:07d}")]
    assert result["records"] == 645 and result["records_held"] == 600
    assert result["files_held"] == 1 and result["blocks_over_limit"] == 1
    assert 0 < result["largest_block"] <= LIMIT
    # The file stays staged, marked as holding records back; the others are linked.
    ledger = _ledger(settings)
    assert ledger[ORG["social_care"]] == ("staged", "linkage_held")
    assert ledger[ORG["health"]] == ledger[ORG["education"]] == ("linked", None)

    # The sender's notice: its file, the count, the fields the records share; never a value.
    notice = _notice(settings, "social_care", N1)
    assert notice is not None and notice["records_held"] == 600
    assert [(f["file_name"], f["records_held"]) for f in notice["files"]] == [(f"sc_extract_{N1:%Y%m%d}.txt", 600)]
    [block] = notice["shared_fields"]
    assert (block["rule"], block["fields"], block["records_held"], block["blocks"]) == (rule, fields, 600, 1)
    assert block["largest_block_records"] == 600 and block["largest_block_comparisons"] == 600 * 599 // 2
    assert notice["max_block_comparisons"] == LIMIT
    notice_files = list(settings.outbox(ORG["social_care"]).glob("linkage-held-*"))
    assert sorted(p.suffix for p in notice_files) == [".json", ".txt"]
    for path in notice_files:
        written = path.read_text(encoding="utf-8")
        for value in ("2015-01-01", PLACEHOLDER_POSTCODE, "BABY", "Baby", "UNKNOWN", "Unknown", nhs(5000),
                      _letters(1000), "S0001000"):  # fmt: skip
            assert value not in written, value
    assert "600" in notice_files[0].with_suffix(".txt").read_text(encoding="utf-8")
    assert _notice(settings, "health", N1) is None and _notice(settings, "education", N1) is None

    # The night summary, the night's metrics and the report's attention list count them.
    summary = night_summary(settings, N1)
    assert summary["linkage"]["records_held"] == 600 and summary["linkage"]["files_held"] == 1
    org = summary["organisations"][ORG["social_care"]]
    assert org["records_held"] == 600 and org["held_by_rule"] == {rule: 600}
    assert summary["sectors"]["social_care"]["records_held"] == 600
    assert summary["organisations"][ORG["health"]]["records_held"] == 0
    with engine_for(settings.index_url).connect() as conn:
        metrics = dict(conn.execute(text("SELECT name, value FROM night_metric WHERE night = :n"), {"n": N1}).all())
    assert metrics["linkage_records_held"] == 600 and metrics[f"org:{ORG['social_care']}:records_held"] == 600
    assert metrics[f"org:{ORG['social_care']}:held:{rule}"] == 600
    data = load_night(settings, N1)
    assert any(a.startswith("linkage held back 600 record(s) of 1 file(s)") for a in data.attention)
    reasons = {o["code"]: o["reasons"] for o in data.organisations}
    assert f"600 record(s) held back from linkage (too many records share: {fields})" in reasons[ORG["social_care"]]


def test_a_rerun_gives_the_same_state_and_a_corrected_file_links_the_next_night(bounded) -> None:
    settings = bounded
    placeholders = _placeholders(300, date_of_birth=PLACEHOLDER_DOB, postcode=PLACEHOLDER_POSTCODE)
    _deliver(settings, N1, {"health": _normal("health"), "social_care": placeholders + [child(1, "social_care")]})
    link_pending(settings, N1)
    before, notice = _index(settings), _notice(settings, "social_care", N1)
    notice_text = (settings.outbox(ORG["social_care"]) / f"linkage-held-{N1}.txt").read_text(encoding="utf-8")

    # A rerun reads again only the held records (the file's others are linked) and holds them again.
    again = link_pending(settings, N1).as_dict()
    assert (again["records"], again["records_held"], again["files_held"]) == (300, 300, 1)
    assert _index(settings) == before
    assert _notice(settings, "social_care", N1) == notice
    assert (settings.outbox(ORG["social_care"]) / f"linkage-held-{N1}.txt").read_text(encoding="utf-8") == notice_text
    assert _ledger(settings)[ORG["social_care"]] == ("staged", "linkage_held")

    # The next night social care sends the same records with their real dates of birth and
    # postcodes: the corrected versions replace the held ones, and everything links.
    corrected = [{**r, **{k: v for k, v in row.items() if k in ("date_of_birth", "postcode")}}
                 for r, row in zip(placeholders, _placeholders(300), strict=True)]  # fmt: skip
    _deliver(settings, N2, {"social_care": corrected})
    result = link_pending(settings, N2).as_dict()
    assert result["records_held"] == 0 and result["records"] == 300
    index = _index(settings)
    assert all(_key(settings, "social_care", r["local_id"]) in index for r in corrected)
    assert index[_key(settings, "social_care", "S0000001")] == before[_key(settings, "social_care", "S0000001")]
    with engine_for(settings.index_url).connect() as conn:
        statuses = conn.execute(text("SELECT status, reason FROM file_ledger")).all()
    assert [tuple(s) for s in statuses] == [("linked", None)] * 3
    assert _notice(settings, "social_care", N2) is None
    assert _notice(settings, "social_care", N1) == notice, "the night's notice stays as it was sent"


def test_a_block_formed_with_the_index_is_held_back(bounded) -> None:
    settings = bounded
    # Night 1: health's 150 records share a date of birth and postcode (11,175 comparisons:
    # within the limit); they are linked.
    shared = {"date_of_birth": PLACEHOLDER_DOB, "postcode": PLACEHOLDER_POSTCODE}
    _deliver(settings, N1, {"health": _placeholders(150, "health", **shared)})
    first = link_pending(settings, N1).as_dict()
    assert first["records_held"] == 0 and len(_index(settings)) == 150
    before = _index(settings)
    # Night 2: 120 more from social care: 7,140 comparisons among themselves, within the
    # limit, but 120 x 150 more with the index's. Education's ordinary records link.
    _deliver(settings, N2, {"social_care": _placeholders(120, first=3000, **shared), "education": _normal("education")})
    result = link_pending(settings, N2).as_dict()
    index = _index(settings)
    assert len(index) == 170 and {k: index[k] for k in before} == before
    assert result["records_held"] == 120 and result["files_held"] == 1
    notice = _notice(settings, "social_care", N2)
    assert notice is not None and notice["records_held"] == 120
    [block] = notice["shared_fields"]
    assert block["largest_block_records"] == 270 and block["largest_block_comparisons"] == 120 * 119 // 2 + 120 * 150
    assert _ledger(settings)[ORG["social_care"]] == ("staged", "linkage_held")
    assert _ledger(settings)[ORG["education"]] == ("linked", None)


def test_a_record_sent_again_with_a_placeholder_keeps_its_previous_version(bounded) -> None:
    settings = bounded
    # Night 1: social care knows children 1 to 5 (health knows them too) and child 30 (only it).
    known = (1, 2, 3, 4, 5, 30)
    _deliver(settings, N1, {"health": _normal("health"), "social_care": [child(i, "social_care") for i in known]})
    link_pending(settings, N1)
    before = _index(settings)
    query = text("SELECT source_key, date_of_birth, postcode FROM source_record ORDER BY source_key")
    with engine_for(settings.index_url).connect() as conn:
        kept = conn.execute(query).all()
    # Night 2: social care sends those six again with its placeholder date of birth and
    # postcode, among 300 others; education sends child 30 for the first time.
    shared = {"date_of_birth": PLACEHOLDER_DOB, "postcode": PLACEHOLDER_POSTCODE}
    again = [{**child(i, "social_care"), **shared} for i in known]
    _deliver(settings, N2, {"social_care": again + _placeholders(300, **shared), "education": [child(30, "education")]})
    result = link_pending(settings, N2).as_dict()
    assert result["records_held"] == 306
    # The index keeps their previous versions as they were, and compares tonight's records
    # with them: education's child 30 joins the child of social care's record.
    with engine_for(settings.index_url).connect() as conn:
        now = {r.source_key: tuple(r) for r in conn.execute(query).all()}
    assert [now[r.source_key] for r in kept] == [tuple(r) for r in kept]
    index = _index(settings)
    assert {k: index[k] for k in before} == before
    assert index[_key(settings, "education", "E0000030")] == before[_key(settings, "social_care", "S0000030")]
    # A rerun reads the held records again (the file has no others) and holds them again.
    rerun = link_pending(settings, N2).as_dict()
    assert (rerun["records"], rerun["records_held"]) == (306, 306) and _index(settings) == index


def test_blocks_are_counted_as_splinks_joins_make_pairs() -> None:
    """The count in SQL against the pairs the rules' joins make, record by record: within
    tonight's records (each pair once) and between tonight's and the index's."""
    import duckdb

    from childindex.linkage.blocking import FIXED_RULES
    from childindex.linkage.bounds import _blocks_sql

    con = duckdb.connect()
    # given, family: ANNA SMITH x3 tonight and x2 in the index; SMITH ANNA (swapped) x2
    # tonight and x1 in the index; one BEN JONES each side; a NULL meets nothing.
    rows = {"new_f": [("ANNA", "SMITH")] * 3 + [("SMITH", "ANNA")] * 2 + [("BEN", "JONES"), (None, "SMITH")],
            "old_f": [("ANNA", "SMITH")] * 2 + [("SMITH", "ANNA"), ("BEN", "JONES"), ("ANNA", None)]}  # fmt: skip
    for table, values in rows.items():
        con.execute(f"CREATE TABLE {table} (unique_id VARCHAR, given VARCHAR, family VARCHAR)")
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", [(f"{table}{i}", g, f) for i, (g, f) in
                                                                  enumerate(values)])  # fmt: skip
    rules = {r.name: r for r in FIXED_RULES}

    def blocks(name: str) -> dict[tuple, tuple[int, int]]:
        sql = f"SELECT k0, k1, block_records, comparisons FROM ({_blocks_sql(rules[name], 'new_f', 'old_f')})"
        return {(k0, k1): (n, c) for k0, k1, n, c in con.execute(sql).fetchall()}

    # Names: ANNA SMITH 3 x 2 / 2 + 3 x 2 = 9; SMITH ANNA 1 + 2 x 1 = 3; BEN JONES 0 + 1.
    assert blocks("names") == {("ANNA", "SMITH"): (5, 9), ("SMITH", "ANNA"): (3, 3), ("BEN", "JONES"): (2, 1)}
    within = con.execute("SELECT count(*) FROM new_f l JOIN new_f r ON l.given = r.given AND l.family = r.family"
                         " AND l.unique_id < r.unique_id").fetchall()[0][0]  # fmt: skip
    between = con.execute("SELECT count(*) FROM old_f l JOIN new_f r ON l.given = r.given AND l.family = r.family")
    assert (within, between.fetchall()[0][0]) == (4, 9)
    assert sum(c for _n, c in blocks("names").values()) == 4 + 9
    # Swapped, key ANNA SMITH: tonight's 3 ANNA SMITHs meet tonight's 2 SMITH ANNAs (6 pairs),
    # and the index's 2 ANNA SMITHs meet tonight's SMITH ANNAs (4). Key SMITH ANNA: the same
    # 6 from the other side (the join on each key makes both orders of a pair before one is
    # kept: that is its work), and the index's SMITH ANNA meets tonight's ANNA SMITHs (3).
    assert blocks("names_swapped") == {("ANNA", "SMITH"): (7, 6 + 4), ("SMITH", "ANNA"): (6, 6 + 3),
                                       ("BEN", "JONES"): (1, 0), ("JONES", "BEN"): (1, 0)}  # fmt: skip
    swapped = con.execute("SELECT count(*) FROM new_f l JOIN new_f r ON l.given = r.family AND l.family = r.given"
                          " AND l.unique_id < r.unique_id").fetchall()[0][0]  # fmt: skip
    assert swapped == 6


def test_past_the_spill_budget_the_night_fails_in_one_line_and_publishes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from childindex.index.db import migrate
    from childindex.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    migrate(settings.index_url)
    _deliver(settings, N1, {"health": _normal("health")})
    link_pending(settings, N1)
    before = _index(settings)
    _deliver(settings, N2, {"social_care": _placeholders(6000, date_of_birth=PLACEHOLDER_DOB,
                                                          postcode=PLACEHOLDER_POSTCODE)})  # fmt: skip
    # The next night with no block limit to speak of, little memory, and a spill budget of
    # one megabyte: the placeholder block (18 million comparisons) must spill.
    monkeypatch.setenv("CHILDINDEX_LINKAGE__MAX_BLOCK_COMPARISONS", str(10**12))
    monkeypatch.setenv("CHILDINDEX_LINKAGE__DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("CHILDINDEX_LINKAGE__SPILL_BUDGET", "1MiB")
    settings = load_settings()
    with pytest.raises(DiskFull) as caught:
        link_pending(settings, N2)
    message = str(caught.value)
    assert "\n" not in message and "SELECT" not in message.upper()
    assert "CHILDINDEX_LINKAGE__SPILL_BUDGET (1MiB)" in message and "nothing was published" in message
    assert caught.value.stage == "linkage" and caught.value.night == N2
    assert caught.value.__cause__ is None and caught.value.__suppress_context__, "no chained traceback"
    # The previous index is intact, the file waits, and the spill is gone.
    assert _index(settings) == before
    assert _ledger(settings)[ORG["social_care"]] == ("staged", None)
    spill = settings.work_dir / "linkage-spill"
    assert not spill.exists() or not any(spill.iterdir())


def test_held_back_records_do_not_stop_a_key_rotation(bounded) -> None:
    """A file holding records back stays staged for as long as its sender takes to correct
    them; a key rotation (which refuses while files wait to be linked) goes ahead and drops
    it: its staged pseudonyms are under the old key, and its sender re-sends them anyway."""
    from datetime import timedelta

    from childindex.keys.rotation import rotate_key

    settings = bounded
    placeholders = _placeholders(300, date_of_birth=PLACEHOLDER_DOB, postcode=PLACEHOLDER_POSTCODE)
    _deliver(settings, N1, {"health": _normal("health"), "social_care": placeholders + [child(1, "social_care")]})
    link_pending(settings, N1)
    assert _ledger(settings)[ORG["social_care"]] == ("staged", "linkage_held")
    done = rotate_key(settings, ("rotated-key-" + "9f8e7d6c5b4a3210" * 3).encode(), N1 + timedelta(days=1))
    assert done.held_files_dropped == 1 and _ledger(settings)[ORG["social_care"]] == ("expired", "linkage_held")
    assert len(_index(settings)) == 21 and not list(settings.staging_dir.rglob("*.parquet"))
