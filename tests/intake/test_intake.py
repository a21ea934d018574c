from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from childindex.intake import pending_files, run_intake
from childindex.staging.layout import STAGING_COLUMNS
from tests.conftest import TEST_REGISTRY
from tests.helpers import ORG, child, drop, render
from tests.registries import registry_with, use_registry

NIGHT = date(2026, 11, 24)
HEALTH, EDUCATION = ORG["health"], ORG["education"]  # RH1 (health_chis), 840 (education_mis)


def _receipt(result: dict) -> dict:
    return json.loads(open(result["receipt_path"], encoding="utf-8").read())


@pytest.mark.parametrize("sector", ["health", "education", "social_care"])
def test_clean_file_is_staged_in_the_common_layout(settings, sector: str) -> None:
    code = ORG[sector]
    rows = [child(i, sector) for i in range(1, 6)]
    rows[0]["given_name"] = "Zoë"  # survives each contract's encoding
    drop(settings, code, render(sector, rows))
    [result] = run_intake(settings, code, NIGHT)
    assert result["organisation"] == code
    assert (result["outcome"], result["rows_read"], result["rows_accepted"], result["rows_rejected"]) == (
        "accepted",
        5,
        5,
        0,
    )
    staged = duckdb.sql(
        f"SELECT * FROM read_parquet('{result['staged_path']}', hive_partitioning = false) ORDER BY source_row"
    )
    assert tuple(staged.columns) == STAGING_COLUMNS
    got = staged.fetchall()
    assert got[0][STAGING_COLUMNS.index("given_name")] == "Zoë"
    assert {r[STAGING_COLUMNS.index("date_of_birth")] for r in got} == {r["date_of_birth"] for r in rows}
    # Identifiers are only ever stored as 64-hex HMACs.
    text = open(result["staged_path"], "rb").read()
    for r in rows:
        assert r["local_id"].encode() not in text and r["nhs_number"].encode() not in text
    organisation_column = [r[STAGING_COLUMNS.index(c)] for r in got for c in ("organisation", "sector")]
    assert organisation_column == [code, sector] * 5
    assert not list(settings.drop_folder(code).iterdir()), "drop folder emptied"
    assert (settings.archive_dir / code / NIGHT.isoformat()).is_dir()


def test_extra_columns_are_dropped_and_named_not_shown(settings) -> None:
    data = render("health", [child(1)], extras={"Ethnicity": "CANARYETHNIC", "=HYPERLINK(1)": "x"})
    drop(settings, HEALTH, data)
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert receipt["columns_dropped"] == ["Ethnicity", "'=HYPERLINK(1)"]
    staged = open(result["staged_path"], "rb").read()
    assert b"CANARYETHNIC" not in staged and b"Ethnicity" not in staged
    assert "CANARYETHNIC" not in json.dumps(receipt)


def test_row_rejections_name_row_column_and_rule_never_value(settings) -> None:
    settings.validation.max_rejected_share = 1.0  # keep the file despite 8 of 9 rows rejected
    rows = [
        child(1),
        child(2, date_of_birth="31/02/2015"),
        child(3, nhs_number="9990000019"),
        child(4, service="X"),
        child(5, postcode="NOTAPOSTCODE"),
        # health_chis stages a blank identity field (missing_identity: stage), but not two of
        # the names and date of birth without an NHS number; a contact route is always required.
        child(6, given_name=None, date_of_birth=None, nhs_number=None, contact_route=None),
        child(7, date_of_birth=date(2030, 1, 1)),
        child(8, involvement_start=date(2021, 1, 1), involvement_end=date(2020, 1, 1)),
        child(9, local_id="H0000002"),  # shares row 2's id: both rows are rejected
    ]
    drop(settings, HEALTH, render("health", rows))
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]) == (9, 2, 7)
    assert receipt["outcome"] == "accepted_with_rejections"
    # child(i) is in spreadsheet row i + 1: the header is row 1.
    got = [(r["row"], r["column"], r["rule"]) for r in receipt["rejected_rows"]]
    assert got == [
        (3, "LocalPatientID", "duplicate_local_id"),
        (3, "DateOfBirth", "date_format"),  # listed with the rejection, though alone it would be set aside
        (4, "NHSNumber", "nhs_number_check"),
        (5, "ServiceCode", "code_set"),
        (7, "TeamContact", "required"),
        (7, "*", "too_little_identity"),
        (8, "DateOfBirth", "date_of_birth_range"),
        (9, "CaseloadStart", "date_order"),
        (10, "LocalPatientID", "duplicate_local_id"),
    ]
    # health_chis stages a malformed postcode as a blank (missing_identity: stage): kept, listed.
    assert [(r["row"], r["column"], r["rule"]) for r in receipt["values_set_aside"]] == [
        (6, "Postcode", "postcode_format")
    ]
    assert receipt["incomplete_rows"] == {"Postcode": 1}
    staged = duckdb.sql(f"SELECT source_row, postcode FROM '{result['staged_path']}' ORDER BY 1").fetchall()
    assert staged == [(1, child(1)["postcode"]), (5, None)]
    text = json.dumps(receipt) + open(result["receipt_path"].replace(".json", ".txt")).read()
    for value in ("31/02/2015", "9990000019", "NOTAPOSTCODE", "2030"):
        assert value not in text


def test_field_count_errors_are_numbered_as_in_a_spreadsheet(settings) -> None:
    settings.validation.max_rejected_share = 0.5
    good = render("health", [child(1), child(2), child(3)]).decode()
    lines = good.splitlines()
    lines.insert(2, "H9,1,2")  # becomes data row 2: row 3 in a spreadsheet (the header is row 1)
    drop(settings, HEALTH, ("\n".join(lines) + "\n").encode())
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]) == (4, 3, 1)
    assert [(r["row"], r["rule"]) for r in receipt["rejected_rows"]] == [(3, "field_count")]
    rows = duckdb.sql(f"SELECT source_row FROM read_parquet('{result['staged_path']}') ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [1, 3, 4]


@pytest.mark.parametrize(
    ("data", "rules"),
    [
        (b"", ["empty_file"]),
        (render("health", [child(1)], drop_columns=("Surname",)), ["missing_columns"]),
        (render("health", [child(1)], extras={"Forename": "x"}), ["duplicate_header"]),
        # Every problem at once: UTF-16, and no header the contract knows.
        (b"\xff\xfe\x00bad header", ["encoding", "missing_columns"]),
        (render("health", [child(1, nhs_number="1"), child(2, service="Q")]), ["all_rows_rejected"]),
    ],
)
def test_file_level_rejection_quarantines_byte_for_byte(settings, data: bytes, rules: list[str]) -> None:
    drop(settings, HEALTH, data)
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert receipt["outcome"] == "rejected"
    assert [p["rule"] for p in receipt["file_problems"]] == rules
    assert receipt["rows_read"] == receipt["rows_accepted"] + receipt["rows_rejected"]
    assert result["staged_path"] is None
    [kept] = [p for p in settings.quarantine_dir.rglob("health_*")]
    assert kept.read_bytes() == data


def test_wrong_name_is_quarantined_with_receipt(settings) -> None:
    drop(settings, HEALTH, render("health", [child(1)]), name="health-latest.csv")
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert _receipt(result)["file_problems"][0]["rule"] == "file_name"


def test_same_file_twice_is_recognised_and_not_loaded_again(settings) -> None:
    data = render("health", [child(1), child(2)])
    drop(settings, HEALTH, data)
    [first] = run_intake(settings, HEALTH, NIGHT)
    drop(settings, HEALTH, data)
    [second] = run_intake(settings, HEALTH, NIGHT)
    assert first["outcome"] == "accepted" and second["outcome"] == "duplicate"
    assert second["staged_path"] is None and second["rows_accepted"] == 0


def test_incomplete_uploads_are_never_read(settings) -> None:
    drop(settings, HEALTH, render("health", [child(1)]), complete=False)  # no .done marker
    drop(settings, EDUCATION, render("education", [child(1, "education")]), complete=False)  # .part
    assert pending_files(settings, HEALTH) == [] and pending_files(settings, EDUCATION) == []
    assert run_intake(settings, HEALTH, NIGHT) == []


def _linked_delivery(settings, tmp_path, link) -> tuple[Path, bytes, dict]:
    """A valid extract outside the drop folder, put in it as a complete delivery by
    ``link(target, name)``; the extract, its bytes and the receipt intake gave the link."""
    outside = tmp_path / "outside.csv"
    data = render("health", [child(1)])
    outside.write_bytes(data)
    folder = settings.drop_folder(HEALTH)
    folder.mkdir(parents=True, exist_ok=True)
    link(outside, folder / "health_2026-11-24.csv")
    (folder / "health_2026-11-24.csv.done").touch()
    [result] = run_intake(settings, HEALTH, NIGHT)
    return outside, data, _receipt(result)


def test_symlinks_are_rejected_never_followed(settings, tmp_path) -> None:
    outside, data, receipt = _linked_delivery(settings, tmp_path, lambda target, name: name.symlink_to(target))
    assert receipt["outcome"] == "rejected" and receipt["file_problems"][0]["rule"] == "symlink"
    assert receipt["rows_read"] == 0 and receipt["size_bytes"] == 0
    assert outside.read_bytes() == data, "the target is untouched"
    [moved] = list(settings.quarantine_dir.rglob("health_2026-11-24.csv"))
    assert moved.is_symlink()


def test_check_is_the_same_rules_offline(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from childindex.cli import app

    monkeypatch.chdir(tmp_path)  # no key, no database: nothing but the file is needed
    monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(TEST_REGISTRY))  # who RH1 is
    good = tmp_path / "health_2026-11-24.csv"
    good.write_bytes(render("health", [child(i) for i in range(1, 11)]))
    some_bad = tmp_path / "sub" / "health_2026-11-24.csv"
    some_bad.parent.mkdir()
    some_bad.write_bytes(render("health", [child(i) for i in range(1, 10)] + [child(10, service="Q")]))
    all_bad = tmp_path / "bad" / "health_2026-11-24.csv"
    all_bad.parent.mkdir()
    all_bad.write_bytes(b"LocalPatientID\nH1\n")
    runner = CliRunner()
    # A registered organisation by its code, or one not yet registered by the contract it will send.
    for sender in (["--organisation", HEALTH], ["--contract", "health_chis"]):
        assert runner.invoke(app, ["check", *sender, str(good)]).exit_code == 0
        r = runner.invoke(app, ["check", *sender, str(some_bad)])
        assert r.exit_code == 1 and "row 11: column ServiceCode: code_set" in r.output
        r = runner.invoke(app, ["check", *sender, str(all_bad), "--json"])
        assert r.exit_code == 2 and '"missing_columns"' in r.output
    r = runner.invoke(app, ["check", "--organisation", HEALTH, str(good), "--json"])
    assert '"organisation": "RH1"' in r.output and '"contract": "health_chis"' in r.output
    r = runner.invoke(app, ["check", "--contract", "health_epr", str(good), "--json"])  # another layout
    assert r.exit_code == 2 and '"file_name"' in r.output
    assert not (tmp_path / "childindex-data").exists(), "check writes nothing"


def test_reprocess_readmits_a_quarantined_file(settings) -> None:
    from datetime import timedelta

    from childindex.intake import reprocess

    _three_nights_of_ten_rows(settings)
    big = render("health", [child(i) for i in range(1000, 1100)])  # a genuine surge: 10x the usual
    later = NIGHT + timedelta(days=3)
    drop(settings, HEALTH, big, night=later)
    [first] = run_intake(settings, HEALTH, later)
    assert first["outcome"] == "rejected"
    again = reprocess(settings, HEALTH, later, sha_prefix=first["sha256"][:12], skip_row_count=True)
    assert again["outcome"] == "accepted" and again["rows_accepted"] == 100
    assert not any(p.name.startswith("health_") for p in settings.quarantine_dir.rglob("*")), "no second copy"


def test_reprocess_says_what_it_needs(data_dir: Path) -> None:
    from childindex.errors import UsageError
    from childindex.intake import reprocess
    from childindex.settings import load_settings

    settings = load_settings()
    with pytest.raises(UsageError, match="0 quarantined files of RH1 match 'abc'; give a longer prefix"):
        reprocess(settings, HEALTH, NIGHT, sha_prefix="abc")
    with pytest.raises(UsageError, match="name a quarantined file's SHA-256 prefix, or a corrected file"):
        reprocess(settings, HEALTH, NIGHT)


def test_reprocess_with_a_corrected_file(settings, tmp_path) -> None:
    from childindex.intake import reprocess

    drop(settings, HEALTH, render("health", [child(1, service="Q"), child(2, service="Q")]))
    [first] = run_intake(settings, HEALTH, NIGHT)
    assert first["outcome"] == "rejected"
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(render("health", [child(1), child(2)]))
    again = reprocess(settings, HEALTH, NIGHT, sha_prefix=first["sha256"][:8], corrected=fixed)
    assert again["outcome"] == "accepted" and again["file_name"] == "health_2026-11-24.csv"


def test_too_many_rejected_rows_quarantine_the_file(settings, monkeypatch, tmp_path) -> None:
    rows = [child(i) for i in range(1, 9)] + [child(9, service="Q"), child(10, service="Q")]
    drop(settings, HEALTH, render("health", rows))
    [result] = run_intake(settings, HEALTH, NIGHT)  # 20% rejected: at the limit, kept
    assert result["outcome"] == "accepted_with_rejections"
    # Over the default limit: rejected.
    drop(settings, HEALTH, render("health", rows[1:]), night=date(2026, 11, 25))  # 2 of 9
    [result] = run_intake(settings, HEALTH, NIGHT)
    assert [p["rule"] for p in _receipt(result)["file_problems"]] == ["rejected_share_over_threshold"]
    # The organisation's own, stricter limit in the registry: 20% is now too many.
    settings = use_registry(monkeypatch, tmp_path / "registry", data=registry_with(RH1={"max_rejected_share": 0.1}))
    rows = [child(i) for i in range(11, 19)] + [child(19, service="Q"), child(20, service="Q")]
    drop(settings, HEALTH, render("health", rows), night=date(2026, 11, 26))
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert receipt["outcome"] == "rejected" and result["staged_path"] is None
    assert [p["rule"] for p in receipt["file_problems"]] == ["rejected_share_over_threshold"]
    assert "limit is 10.0%" in receipt["file_problems"][0]["detail"]
    assert (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]) == (10, 0, 10)
    # The per-row detail is still there, so the organisation knows what to fix.
    assert [r["rule"] for r in receipt["rejected_rows"]] == ["code_set", "code_set"]
    # Other organisations keep the default limit: 20% is still kept from them.
    sc = [child(i, "social_care") for i in range(1, 9)] + [child(i, "social_care", service="Q") for i in (9, 10)]
    drop(settings, "social_care", render("social_care", sc))
    [result] = run_intake(settings, ORG["social_care"], NIGHT)
    assert result["outcome"] == "accepted_with_rejections"


def _three_nights_of_ten_rows(settings, rows: int = 10) -> None:
    """History for the row-count band: three accepted files of 10 (or ``rows``) rows."""
    from datetime import timedelta

    for k in range(3):
        drop(
            settings,
            HEALTH,
            render("health", [child(i + 100 * k) for i in range(1, rows + 1)]),
            night=NIGHT + timedelta(days=k),
        )
        [result] = run_intake(settings, HEALTH, NIGHT + timedelta(days=k))
        assert result["outcome"] == "accepted"


def test_a_sudden_drop_is_quarantined(settings) -> None:
    """90 rows a night, then 25: under a third of the median and 65 rows (more than the
    slack of 50) short."""
    from datetime import timedelta

    _three_nights_of_ten_rows(settings, rows=90)
    drop(settings, HEALTH, render("health", [child(i) for i in range(500, 525)]), night=NIGHT + timedelta(days=3))
    [result] = run_intake(settings, HEALTH, NIGHT + timedelta(days=3))
    receipt = _receipt(result)
    assert [p["rule"] for p in receipt["file_problems"]] == ["row_count_anomaly"]
    assert receipt["rows_read"] == 25 and receipt["rows_accepted"] == 0
    assert list(settings.quarantine_dir.glob(f"{HEALTH}/*/health_2026-11-27.csv"))


def test_a_small_organisation_s_few_rows_more_are_not_an_anomaly(settings) -> None:
    """3 rows a night, then 11: nearly four times as many, but 8 rows are a quiet sender's
    noise (within the slack), not a broken export."""
    from datetime import timedelta

    _three_nights_of_ten_rows(settings, rows=3)
    drop(settings, HEALTH, render("health", [child(i) for i in range(500, 511)]), night=NIGHT + timedelta(days=3))
    [result] = run_intake(settings, HEALTH, NIGHT + timedelta(days=3))
    assert (result["outcome"], result["rows_accepted"]) == ("accepted", 11)


def test_hard_links_are_rejected_never_read(settings, tmp_path) -> None:
    """Issue 18, small holes: a hard link in a drop folder to a file elsewhere (here a valid
    extract, in real life the index or /etc/passwd) was read, hashed and loaded (it failed on
    the code before this test)."""
    import os

    outside, data, receipt = _linked_delivery(settings, tmp_path, os.link)
    assert receipt["outcome"] == "rejected" and receipt["file_problems"][0]["rule"] == "hard_link"
    assert receipt["rows_read"] == 0 and receipt["size_bytes"] == 0
    assert outside.read_bytes() == data, "the other name's file is untouched"
    assert not list(settings.staging_dir.rglob("*.parquet")), "nothing was staged"


def test_a_compressed_delivery_that_inflates_past_its_cap_is_quarantined_before_anything_is_written(
    settings, monkeypatch
) -> None:
    """Issue 18, small holes: a .gz delivery had no cap on its inflated size (a few kilobytes
    can inflate to fill the disk); past the cap it is quarantined, unparsed (this failed on the
    code before the test)."""
    import gzip

    from childindex.settings import load_settings

    monkeypatch.setenv("CHILDINDEX_VALIDATION__MAX_INFLATED_BYTES", str(1024 * 1024))
    settings = load_settings()
    rows = [child(i) for i in range(1, 11)]
    body = render("health", rows)
    header, lines = body.split(b"\n", 1)
    bomb = gzip.compress(header + b"\n" + lines * (2 * 1024 * 1024 // len(lines) + 1))  # ~2 MiB inflated
    assert len(bomb) < 64 * 1024
    drop(settings, "health", bomb, name="health_2026-11-24.csv.gz")
    [result] = run_intake(settings, HEALTH, NIGHT)
    receipt = _receipt(result)
    assert receipt["outcome"] == "rejected" and receipt["file_problems"][0]["rule"] == "too_large"
    assert not list(settings.staging_dir.rglob("*.parquet")) and not list(settings.work_dir.rglob("*.parquet"))
    # Under the cap, the same kind of delivery is loaded.
    drop(settings, "health", gzip.compress(body), name="health_2026-11-25.csv.gz")
    [ok] = run_intake(settings, HEALTH, NIGHT)
    assert ok["outcome"] == "accepted" and ok["rows_accepted"] == 10
