"""The bad-input corpus (tests/corpus_cases.py) run through intake, linkage and the pre-check.

For every kind of broken delivery: the exact receipt (outcome, file rules, rejected rows,
counts), rows read = accepted + rejected, a JSON and a text receipt in the organisation's
outbox that name it and its contract and hold no value from the file, and `childindex
check` giving the same answer. After a whole-file rejection (or a repeat delivery) the
original is kept byte for byte, nothing is staged and the index is exactly as the clean
night before left it.

Cases whose current behaviour is wrong are marked xfail(strict=True) with what is observed;
the case itself states what should happen.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from childindex.index.db import engine_for, migrate
from childindex.intake import check_file, pending_files, run_intake
from childindex.linkage import link_pending
from childindex.receipts import HEADER_ROWS
from childindex.settings import load_settings
from tests.conftest import TEST_REGISTRY
from tests.helpers import CONTRACT, ORG, child, drop, file_name
from tests.validation.corpus_cases import CASES, CLEAN_NIGHT, NIGHT, Case, Delivery, Row, clean_bytes, csv

BY_ID = {c.id: c for c in CASES}
INDEX_TABLES = ("child", "source_record", "involvement")
CLEAN_SECTOR = "health"  # the clean night is health's (the repeat-delivery case resends its file)
CLEAN_ORG = ORG[CLEAN_SECTOR]
_TEMPLATE: Path | None = None  # a data dir holding the clean night, loaded and linked


def _params(cases: list[Case]) -> list:
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
        for c in cases
    ]


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap():
    """Intake calls gc.collect() after every GX run (to free the DuckDB work file); in a test
    process that walks every object of every imported module and earlier test. Each case
    freezes what is alive when it starts (gc.freeze), so a collection only walks what the
    case created; nothing is frozen while it is garbage, and the module unfreezes at the end."""
    yield
    gc.unfreeze()


@pytest.fixture()
def loaded(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Settings for a data dir whose index already holds one clean night (a few health rows
    through run_intake + link_pending), loaded once and copied for each case."""
    global _TEMPLATE
    if _TEMPLATE is None:
        template = tmp_path_factory.mktemp("clean-night") / "data"
        s = load_settings(data_dir=template)
        s.ensure_dirs()
        migrate(s.index_url)
        drop(s, CLEAN_ORG, clean_bytes(CLEAN_SECTOR), CLEAN_NIGHT)
        [result] = run_intake(s, CLEAN_ORG, CLEAN_NIGHT)
        assert (result["outcome"], result["rows_accepted"]) == ("accepted", 4)
        assert link_pending(s, CLEAN_NIGHT).records == 4
        engine_for(s.index_url).dispose()  # checkpoint SQLite's WAL before copying
        _TEMPLATE = template
    gc.collect()
    gc.freeze()
    shutil.copytree(_TEMPLATE, data_dir)
    settings = load_settings()
    settings.ensure_dirs()
    return settings


def _snapshot(settings) -> dict[str, list[tuple]]:
    from sqlalchemy import text

    with engine_for(settings.index_url).connect() as conn:
        return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))] for t in INDEX_TABLES}


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _secrets(case: Case) -> list[str]:
    """Values from the files that no receipt may show: the case's own plus ordinary ones."""
    values = list(case.secrets)
    for i in (1, 2, 101):
        row = child(i, case.sector)
        values += [str(row[f]) for f in ("local_id", "nhs_number", "upn", "given_name", "family_name")]
    return values + ["LS6 2AB", "0113 496 0001"]


def _assert_no_values(case: Case, *texts: str) -> None:
    for text in texts:
        for value in _secrets(case):
            assert value not in text, f"a value from the file is in the receipt ({case.id})"
        # A formula-looking column name is only ever shown defused.
        start = text.find("=HYPERLINK")
        while start != -1:
            assert text[start - 1] == "'", "formula-looking name not defused"
            start = text.find("=HYPERLINK", start + 1)


def _age_atime(path: Path) -> int:
    """Set a file's access time before its modification time, so that any read moves it
    (relatime does so); returns it. On a filesystem mounted noatime this proves nothing."""
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 10**10, st.st_mtime_ns))
    return path.stat().st_atime_ns


def _copy_for_check(delivery: Delivery, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / delivery.name
    if delivery.target is not None:
        copy.symlink_to(delivery.target)
    else:
        assert delivery.data is not None
        copy.write_bytes(delivery.data)
    return copy


def _sheet(rows: tuple[Row, ...]) -> list[Row]:
    """A case's rows (data rows from 1) as receipts number them: as a spreadsheet does, the
    header being row 1."""
    return [(row + HEADER_ROWS, column, rule) for row, column, rule in rows]


def _assert_receipt(receipt: dict, case: Case, outcome: str) -> None:
    got = (
        receipt["outcome"],
        [p["rule"] for p in receipt["file_problems"]],
        [(r["row"], r["column"], r["rule"]) for r in receipt["rejected_rows"]],
        (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]),
        receipt["columns_dropped"],
        receipt["optional_columns_missing"],
        receipt["incomplete_rows"],
        [(r["row"], r["column"], r["rule"]) for r in receipt["values_set_aside"]],
    )
    want = (
        outcome,
        list(case.file_rules),
        _sheet(case.rejected),
        case.counts,
        list(case.dropped),
        list(case.optional_missing),
        case.incomplete if outcome not in ("rejected", "duplicate") else {},
        _sheet(case.set_aside) if outcome not in ("rejected", "duplicate") else [],
    )
    assert got == want
    assert receipt["rows_read"] == receipt["rows_accepted"] + receipt["rows_rejected"]


@pytest.mark.parametrize("case", _params(CASES))
def test_corpus(case: Case, loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = ORG[case.sector]
    settings = loaded
    if case.registry:  # the organisation's own entry in a registry of the test's own
        registry = yaml.safe_load(TEST_REGISTRY.read_text(encoding="utf-8"))
        for entry in registry["organisations"]:
            if str(entry["code"]) == code:
                entry.update(case.registry)
        path = tmp_path / "organisations.yaml"
        path.write_text(yaml.safe_dump(registry), encoding="utf-8")
        monkeypatch.setenv("CHILDINDEX_ORGANISATIONS_FILE", str(path))
        settings = load_settings()
        assert settings.registry.get(code).model_dump(include=set(case.registry)) == case.registry
    for name, value in case.policy.items():
        setattr(settings.validation, name, value)
    before = _snapshot(settings)
    staged_before = _files(settings.staging_dir)
    delivery = case.build(settings, code, tmp_path / "scratch")
    target_bytes = delivery.target.read_bytes() if delivery.target else None
    target_atime = _age_atime(delivery.target) if delivery.target else None
    check_copy = _copy_for_check(delivery, tmp_path / "check")

    outcome = case.outcome
    if outcome == "not picked up":
        outbox_before = _files(settings.outbox(code))
        mtime = delivery.path.stat().st_mtime_ns
        atime = _age_atime(delivery.path)
        assert pending_files(settings, code) == []
        assert run_intake(settings, code, NIGHT) == []
        assert delivery.path.stat().st_atime_ns == atime, "an incomplete upload was read"
        assert delivery.path.read_bytes() == delivery.on_disk and delivery.path.stat().st_mtime_ns == mtime
        assert _files(settings.outbox(code)) == outbox_before, "no receipt for an incomplete upload"
        link_pending(settings, NIGHT)
        assert _snapshot(settings) == before
        assert delivery.complete is not None
        delivery.complete()
        outcome = case.then or ""

    results = run_intake(settings, code, NIGHT)
    assert len(results) == 1
    [result] = results
    assert result["organisation"] == code

    # The receipt, in JSON and text, in the organisation's outbox, naming it and its contract.
    json_path = Path(result["receipt_path"])
    txt_path = json_path.with_suffix(".txt")
    assert json_path.parent == settings.outbox(code) and json_path.is_file() and txt_path.is_file()
    receipt_text = json_path.read_text(encoding="utf-8")
    receipt = json.loads(receipt_text)
    _assert_receipt(receipt, case, outcome)
    org = settings.registry.get(code)
    assert (receipt["organisation"], receipt["organisation_name"], receipt["contract"]) == (
        code,
        org.name,
        CONTRACT[case.sector],
    )
    assert receipt["file_name"] == delivery.name
    assert receipt["size_bytes"] == (len(delivery.data) if delivery.data is not None else 0)
    assert (result["outcome"], result["rows_read"], result["rows_accepted"], result["rows_rejected"]) == (
        outcome,
        *case.counts,
    )
    text = txt_path.read_text(encoding="utf-8")
    assert f"Outcome: {outcome.replace('_', ' ')}" in text
    _assert_no_values(case, receipt_text, text)

    entry = settings.drop_folder(code) / delivery.name
    assert not os.path.lexists(entry), "the drop folder entry was moved away"
    assert not entry.with_name(delivery.name + ".done").exists()
    if outcome in ("rejected", "duplicate"):
        link_pending(settings, NIGHT)
        assert _snapshot(settings) == before, "the index changed after a file-level rejection"
        assert result["staged_path"] is None and _files(settings.staging_dir) == staged_before
    else:
        assert pq.read_metadata(result["staged_path"]).num_rows == receipt["rows_accepted"]
    if outcome == "rejected":
        kept = settings.quarantine_dir / code / receipt["sha256"][:16] / delivery.name
        if delivery.target is not None:
            assert kept.is_symlink() and Path(os.readlink(kept)) == delivery.target, "the link itself is kept"
            assert delivery.target.stat().st_atime_ns == target_atime, "the link's target is never read"
        else:
            assert not kept.is_symlink() and kept.read_bytes() == delivery.data, "kept byte for byte"

    # The pre-check on the same bytes, offline with its own scratch space as `childindex check`
    # runs it: the same answer (bar the checks that need history). A handful go through the CLI.
    check_outcome, check_rules, check_counts = case.check or (outcome, case.file_rules, case.counts)
    if case.id in CLI_CASES:
        checked, printed = _check_with_cli(case, check_copy, tmp_path, monkeypatch)
    else:
        check_settings = load_settings(data_dir=tmp_path / "check-data", validation=settings.validation)
        receipt_obj = check_file(check_settings, check_settings.registry.get(code), check_copy, NIGHT)
        checked, printed = receipt_obj.to_json(), receipt_obj.to_text()
    assert (checked["outcome"], [p["rule"] for p in checked["file_problems"]]) == (check_outcome, list(check_rules))
    want_rows = [] if case.check else [list(r) for r in _sheet(case.rejected)]
    assert [[r["row"], r["column"], r["rule"]] for r in checked["rejected_rows"]] == want_rows
    assert (checked["rows_read"], checked["rows_accepted"], checked["rows_rejected"]) == check_counts
    assert checked["incomplete_rows"] == (case.incomplete if check_outcome not in ("rejected", "duplicate") else {})
    assert checked["rows_read"] == checked["rows_accepted"] + checked["rows_rejected"]
    assert os.path.lexists(check_copy), "check moves nothing"
    _assert_no_values(case, json.dumps(checked), printed)
    if delivery.target is not None:
        assert delivery.target.stat().st_atime_ns == target_atime, "check never reads through a link"
        assert delivery.target.read_bytes() == target_bytes, "the link's target is never changed"


# Cases whose pre-check goes through `childindex check --json` (exit 0 / 1 / 2).
CLI_CASES = {
    "header_only",
    "delivered_twice",
    "iso_date_and_bad_nhs_check_digit_in_health_file",
    "truncated_last_line_and_extra_field_after_blank_lines",
    "empty_file",
    "utf16_file",
    "symlink_outside_drop_folder",
}
CHECK_EXIT = {"accepted": 0, "accepted_with_rejections": 1, "rejected": 2}


def _check_with_cli(case: Case, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str]:
    from typer.testing import CliRunner

    from childindex.cli import app

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["check", "--organisation", ORG[case.sector], str(path), "--json"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    receipt = json.loads(r.stdout)
    assert r.exit_code == CHECK_EXIT[receipt["outcome"]], r.output
    return receipt, r.output


def test_a_repeat_delivery_keeps_the_first_receipt(loaded) -> None:
    settings = loaded
    [first] = settings.outbox(CLEAN_ORG).glob("*.receipt.json")
    first_text = first.read_text(encoding="utf-8")
    assert json.loads(first_text)["outcome"] == "accepted"
    drop(settings, CLEAN_ORG, clean_bytes(CLEAN_SECTOR), CLEAN_NIGHT)
    [result] = run_intake(settings, CLEAN_ORG, NIGHT)
    assert result["outcome"] == "duplicate"
    assert first.read_text(encoding="utf-8") == first_text


def test_check_then_intake_of_the_same_file_in_one_process(loaded, tmp_path: Path) -> None:
    settings = loaded
    data = csv("health")
    path = tmp_path / file_name("health", NIGHT)
    path.write_bytes(data)
    assert check_file(settings, settings.registry.get(CLEAN_ORG), path, NIGHT).outcome == "accepted"
    drop(settings, CLEAN_ORG, data, NIGHT)
    [result] = run_intake(settings, CLEAN_ORG, NIGHT)
    assert (result["outcome"], result["rows_accepted"]) == ("accepted", 10)


def test_every_marked_value_is_really_in_its_file(data_dir: Path, tmp_path: Path) -> None:
    """Guards the corpus itself: a leak check is only worth something if the value was there."""
    settings = load_settings()
    for case in CASES:
        delivery = case.build(settings, ORG[case.sector], tmp_path / case.id)
        raw = delivery.target.read_bytes() if delivery.target else delivery.data
        assert raw is not None
        if delivery.name.endswith(".gz"):
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                pass
        for value in case.secrets:
            assert any(value.encode(enc) in raw for enc in ("utf-8", "utf-16-le")), (case.id, value)
        shutil.rmtree(settings.drop_root, ignore_errors=True)


def test_the_corpus_covers_the_issue() -> None:
    required = {
        "empty_file",
        "header_only",
        "wrong_delimiter_semicolon",
        "cp1252_in_utf8_file",
        "latin1_in_utf8_file",
        "utf8_byte_order_mark",
        "crlf_line_endings",
        "truncated_last_line",
        "unbalanced_quote",
        "missing_required_column",
        "missing_optional_column",
        "extra_column",
        "duplicated_header",
        "field_100k_chars",
        "invalid_utf8_bytes",
        "iso_date_in_health_file",
        "slash_date_in_education_file",
        "iso_date_in_social_care_file",
        "future_date_of_birth",
        "bad_nhs_check_digit",
        "wrong_upn_check_letter",
        "only_duplicate_rows",
        "gzip_corrupt",
        "gzip_valid",
        "wrong_file_name",
        "symlink_outside_drop_folder",
        "health_half_written_without_done_marker",
        "formula_column_name",
        "blank_required_value",
        "whitespace_only_value",
        "blank_identity_value_staged",
        "blank_identity_fields_without_identifier",
        "unknown_sex_code",
        "unknown_service_code",
        "start_after_end",
        "duplicated_local_id",
        "delivered_twice",
        "wrong_field_count_one_row",
        "too_many_bad_rows",
        "row_count_within_slack",
        "other_contracts_file_name",
        "education_still_named_part",
        "utf16_file",
        "newline_inside_quotes",
        "nul_bytes",
    }
    kinds = [k for c in CASES for k in c.all_kinds()]
    assert len(kinds) == len(set(kinds)), "each kind is in one case"
    assert required <= set(kinds), sorted(required - set(kinds))
    assert len(kinds) >= 32
    assert {c.sector for c in CASES} == {"health", "education", "social_care"}
    assert CLI_CASES <= set(BY_ID)
