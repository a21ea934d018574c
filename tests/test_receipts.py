"""Receipts: outcomes and counts, rules and advice, JSON and text, files never overwritten,
and nothing from a file's rows but row numbers, columns and rules."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path

from childindex.receipts import ADVICE, INCOMPLETE_ADVICE, RECEIPT_VERSION, SET_ASIDE_ADVICE, Receipt, RowRejection
from tests.helpers import child, nhs, render

SHA = hashlib.sha256(b"synthetic extract").hexdigest()
DROPPED_ADVICE = "Stop sending the columns listed as dropped: childindex may not hold them."


def receipt(**over: object) -> Receipt:
    values: dict[str, object] = {
        "organisation": "RH1",
        "organisation_name": "Test community health (synthetic)",
        "contract": "health_chis",
        "contract_version": 3,
        "file_name": "health_2026-11-24.csv",
        "sha256": SHA,
        "size_bytes": 1234,
        "night": "2026-11-24",
        "received_at": "2026-11-25T02:00:00+00:00",
        "outcome": "rejected",
    }
    values.update(over)
    return Receipt(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Outcomes and counts


def test_accept_without_rejections_is_accepted() -> None:
    r = receipt(rows_read=10, rows_accepted=10)
    r.accept()
    assert (r.outcome, r.rows_read, r.rows_accepted, r.rows_rejected) == ("accepted", 10, 10, 0)


def test_accept_with_rejections_says_so() -> None:
    r = receipt(rows_read=10, rows_accepted=8, rows_rejected=2)
    r.accept()
    assert (r.outcome, r.rows_accepted, r.rows_rejected) == ("accepted_with_rejections", 8, 2)


def test_reject_counts_every_row_read_as_rejected_and_names_the_problem() -> None:
    r = receipt(outcome="accepted", rows_read=7, rows_accepted=5, rows_rejected=2)
    r.reject("row_count_anomaly", "7 rows; recent nights 900 to 1100")
    assert (r.outcome, r.rows_read, r.rows_accepted, r.rows_rejected) == ("rejected", 7, 0, 7)
    assert r.file_problems == [{"rule": "row_count_anomaly", "detail": "7 rows; recent nights 900 to 1100"}]
    r.reject("encoding", "not UTF-8")
    assert [p["rule"] for p in r.file_problems] == ["row_count_anomaly", "encoding"]
    assert r.rows_rejected == 7
    # In words, as the quality report counts them: not loaded, not "rejected" one by one.
    assert "Rows read 7, none loaded: the whole file was refused (the file problems below)." in r.to_text()
    assert "rejected 7" not in r.to_text()


def test_a_new_receipt_is_a_rejection_with_nothing_counted() -> None:
    r = receipt()
    assert (r.outcome, r.rows_read, r.rows_accepted, r.rows_rejected, r.rows_sensitive) == ("rejected", 0, 0, 0, 0)
    assert r.receipt_version == RECEIPT_VERSION == 3


def test_a_received_file_s_receipt_names_the_organisation_and_the_contract(data_dir: Path, tmp_path: Path) -> None:
    """Receiving starts the receipt: the sender's code and name, the contract it was read as
    (one contract is sent by many organisations), the file's hash and size, and its night."""
    from childindex.contracts import load_contract
    from childindex.organisations.registry import Organisation
    from childindex.receipts import new_receipt
    from childindex.settings import load_settings

    org = load_settings().registry.get("RH1")
    contract = load_contract(org.contract)
    data = render("health_chis", [child(1)])
    path = tmp_path / "health_2026-11-24.csv"
    path.write_bytes(data)
    r, night = new_receipt(org, contract, path, date(2026, 12, 1))
    assert (r.organisation, r.organisation_name, r.contract, r.contract_version) == (
        "RH1",
        "Test community health (synthetic)",
        "health_chis",
        contract.version,
    )
    assert (night, r.night) == (date(2026, 11, 24), "2026-11-24")
    assert (r.sha256, r.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert (r.outcome, r.receipt_version) == ("rejected", 3)
    assert {k: r.to_json()[k] for k in ("organisation", "organisation_name", "contract")} == {
        "organisation": "RH1",
        "organisation_name": "Test community health (synthetic)",
        "contract": "health_chis",
    }
    assert r.to_text().splitlines()[:2] == [
        "childindex receipt for health_2026-11-24.csv from Test community health (synthetic) (RH1)",
        f"Contract: health_chis v{contract.version}",
    ]
    # Another organisation sending the same contract: its own code and name on the same file.
    other = org.model_copy(update={"code": "RH2", "name": "Another community health (synthetic)"})
    assert isinstance(other, Organisation)
    r2, _ = new_receipt(other, contract, path, date(2026, 12, 1))
    assert (r2.organisation, r2.organisation_name, r2.contract, r2.sha256) == (
        "RH2",
        "Another community health (synthetic)",
        "health_chis",
        r.sha256,
    )
    # The night: from the name, gzipped or not; the run's night when the name does not fit.
    gz = tmp_path / "health_2026-11-23.csv.gz"
    gz.write_bytes(b"x")
    assert new_receipt(org, contract, gz, date(2026, 12, 1))[1] == date(2026, 11, 23)
    wrong = tmp_path / "CYP_CASELOAD_20261124.tsv"  # another contract's name
    wrong.write_bytes(data)
    r, night = new_receipt(org, contract, wrong, date(2026, 12, 1))
    assert (night, r.night) == (None, "2026-12-01")
    # A symlink is never read: its size is 0 and its "hash" is of its name.
    link = tmp_path / "link" / "health_2026-11-24.csv"
    link.parent.mkdir()
    link.symlink_to(path)
    r, _ = new_receipt(org, contract, link, date(2026, 12, 1))
    assert r.size_bytes == 0 and r.sha256 == hashlib.sha256(b"symlink:health_2026-11-24.csv").hexdigest()


# ---------------------------------------------------------------------------------------
# Rules and advice


def test_rules_are_file_problems_first_then_row_rules_in_order_without_duplicates() -> None:
    r = receipt(
        file_problems=[{"rule": "rejected_share_over_threshold", "detail": "40% of rows"}],
        rejected_rows=[
            RowRejection(1, "nhs_number", "nhs_number_check"),
            RowRejection(2, "date_of_birth", "date_format"),
            RowRejection(3, "nhs_number", "nhs_number_check"),
            RowRejection(4, "postcode", "postcode_format"),
            RowRejection(5, "date_of_birth", "date_format"),
        ],
    )
    assert r.rules() == ["rejected_share_over_threshold", "nhs_number_check", "date_format", "postcode_format"]
    assert r.next_steps() == [
        ADVICE["rejected_share_over_threshold"],
        ADVICE["nhs_number_check"],
        ADVICE["date_format"],
        ADVICE["postcode_format"],
    ]


def test_every_rule_has_its_own_advice() -> None:
    for rule, advice in ADVICE.items():
        r = receipt(rejected_rows=[RowRejection(1, "given_name", rule)])
        assert r.next_steps() == [advice], rule
    assert len(set(ADVICE.values())) == len(ADVICE)
    assert ADVICE["nhs_number_check"] == "The NHS number fails its modulus 11 check: re-trace it or leave it blank."


def test_every_row_rule_has_advice_and_a_line_in_the_receipts_page() -> None:
    from childindex.validation.rules import CATALOGUE

    page = (Path(__file__).resolve().parents[1] / "docs" / "receipts.md").read_text(encoding="utf-8")
    assert [d.name for d in CATALOGUE if d.name not in ADVICE] == []
    assert [rule for rule in ADVICE if f"| `{rule}` |" not in page] == []
    assert "| `incomplete_rows` | object |" in page


def test_a_rule_without_advice_is_named_but_gets_none() -> None:
    r = receipt(rejected_rows=[RowRejection(1, "given_name", "made_up_rule"), RowRejection(2, "sex", "code_set")])
    assert r.rules() == ["made_up_rule", "code_set"]
    assert r.next_steps() == [ADVICE["code_set"]]


def test_dropped_columns_add_their_own_advice_last() -> None:
    r = receipt(columns_dropped=["religion", "ethnicity"], rejected_rows=[RowRejection(3, "sex", "code_set")])
    assert r.next_steps() == [ADVICE["code_set"], DROPPED_ADVICE]
    assert receipt(columns_dropped=["religion"]).next_steps() == [DROPPED_ADVICE]


def test_nothing_to_do_when_nothing_went_wrong() -> None:
    r = receipt(rows_read=3, rows_accepted=3, optional_columns_missing=["postcode"])
    r.accept()
    assert r.rules() == []
    assert r.next_steps() == ["Nothing to do."]


# ---------------------------------------------------------------------------------------
# JSON and text


def test_json_leaves_out_working_state_and_includes_next_steps() -> None:
    r = receipt(
        rows_read=4,
        rows_accepted=3,
        rows_rejected=1,
        rejected_rows=[RowRejection(2, "upn", "upn_check")],
        bad_lines=[2, 3],
        rule_counts={"upn:upn_check": 1},
    )
    r.accept()
    data = r.to_json()
    assert "bad_lines" not in data
    assert data["next_steps"] == [ADVICE["upn_check"]]
    assert data["rejected_rows"] == [{"row": 2, "column": "upn", "rule": "upn_check"}]
    assert data["outcome"] == "accepted_with_rejections"
    assert data["rule_counts"] == {"upn:upn_check": 1}
    assert set(data) == {
        "organisation",
        "organisation_name",
        "contract",
        "contract_version",
        "file_name",
        "sha256",
        "size_bytes",
        "night",
        "received_at",
        "outcome",
        "rows_read",
        "rows_accepted",
        "rows_rejected",
        "rows_sensitive",
        "file_problems",
        "rejected_rows",
        "columns_dropped",
        "optional_columns_missing",
        "checks",
        "rejected_rows_total",
        "rule_counts",
        "incomplete_rows",
        "values_set_aside",
        "values_set_aside_total",
        "set_aside_counts",
        "rule_summary",
        "receipt_version",
        "next_steps",
    }
    assert data["incomplete_rows"] == {}
    assert json.loads(json.dumps(data)) == data
    assert r.bad_lines == [2, 3]  # the receipt itself keeps its working state


def test_text_lines() -> None:
    r = receipt(
        rows_read=5,
        rows_accepted=3,
        rows_rejected=2,
        rows_sensitive=1,
        file_problems=[{"rule": "file_name", "detail": "night taken from the run"}],
        columns_dropped=["religion"],
        optional_columns_missing=["postcode", "upn"],
        rejected_rows=[RowRejection(2, "nhs_number", "nhs_number_check"), RowRejection(5, "sex", "code_set")],
    )
    r.accept()
    assert r.to_text().splitlines() == [
        "childindex receipt for health_2026-11-24.csv from Test community health (synthetic) (RH1)",
        "Contract: health_chis v3",
        f"SHA-256: {SHA}",
        "Outcome: accepted with rejections",
        "Rows read 5, accepted 3, rejected 2.",
        "File problem: file_name: night taken from the run",
        "Rows flagged sensitive: 1. For these the index keeps only that a sensitive service is involved and how "
        "to reach it: not the service, not the postcode.",
        "Columns dropped (not in the contract): religion",
        "Optional columns missing: postcode, upn",
        "Rejected rows (numbered as in a spreadsheet: the header is row 1):",
        "  row 2: column nhs_number: nhs_number_check",
        "  row 5: column sex: code_set",
        "What to do next:",
        f"  - {ADVICE['file_name']}",
        f"  - {ADVICE['nhs_number_check']}",
        f"  - {ADVICE['code_set']}",
        f"  - {DROPPED_ADVICE}",
    ]
    assert r.to_text().endswith("\n")


def test_rows_accepted_with_blank_identity_fields_are_counted_by_column_with_a_next_step() -> None:
    """Additive within receipt version 2: ``incomplete_rows`` ({column: rows}), a text line
    and a next step; counts and the contract's column names only."""
    r = receipt(
        rows_read=6,
        rows_accepted=5,
        rows_rejected=1,
        rejected_rows=[RowRejection(4, "*", "too_little_identity")],
        rule_counts={"*:too_little_identity": 1},
        incomplete_rows={"Forename": 3, "DateOfBirth": 2},
        columns_dropped=["religion"],
    )
    r.accept()
    data = r.to_json()
    assert data["incomplete_rows"] == {"Forename": 3, "DateOfBirth": 2}
    assert data["receipt_version"] == 3
    assert data["next_steps"] == [ADVICE["too_little_identity"], INCOMPLETE_ADVICE, DROPPED_ADVICE]
    lines = r.to_text().splitlines()
    assert lines[4:6] == [
        "Rows read 6, accepted 5, rejected 1.",
        "Rows accepted with a blank identity field: Forename 3, DateOfBirth 2.",
    ]
    assert "  row 4: column *: too_little_identity" in lines
    assert "fill in the blank given name" in ADVICE["too_little_identity"].lower()
    assert "send the child's NHS number or UPN" in ADVICE["too_little_identity"]
    # Nothing else to do but fill the blanks: still a next step, not "Nothing to do."
    clean = receipt(rows_read=2, rows_accepted=2, incomplete_rows={"Postcode": 1})
    clean.accept()
    assert clean.outcome == "accepted" and clean.next_steps() == [INCOMPLETE_ADVICE]
    # A file rejected as a whole accepted no row: nothing incomplete was kept.
    clean.reject("row_count_anomaly", "far from recent nights")
    assert clean.incomplete_rows == {} and "blank identity" not in clean.to_text()


def test_text_of_a_clean_file_is_short() -> None:
    r = receipt(rows_read=2, rows_accepted=2)
    r.accept()
    assert r.to_text() == (
        "childindex receipt for health_2026-11-24.csv from Test community health (synthetic) (RH1)\n"
        "Contract: health_chis v3\n"
        f"SHA-256: {SHA}\n"
        "Outcome: accepted\n"
        "Rows read 2, accepted 2, rejected 0.\n"
        "What to do next:\n"
        "  - Nothing to do.\n"
    )


# ---------------------------------------------------------------------------------------
# Writing


def test_write_names_the_file_and_its_hash(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox" / "health"  # created on demand
    r = receipt(rows_read=1, rows_accepted=1)
    r.accept()
    path = r.write(outbox)
    stem = f"health_2026-11-24.csv.{SHA[:8]}.receipt"
    assert path == outbox / f"{stem}.json"
    assert sorted(p.name for p in outbox.iterdir()) == [f"{stem}.json", f"{stem}.txt"]
    assert json.loads(path.read_text(encoding="utf-8")) == r.to_json()
    assert (outbox / f"{stem}.txt").read_text(encoding="utf-8") == r.to_text()


def test_a_second_delivery_of_the_same_bytes_gets_its_own_receipt(tmp_path: Path) -> None:
    first = receipt(rows_read=1, rows_accepted=1)
    first.accept()
    first_path = first.write(tmp_path)
    first_json = first_path.read_text(encoding="utf-8")
    first_txt = first_path.with_suffix(".txt").read_text(encoding="utf-8")

    again = receipt(outcome="duplicate", file_problems=[{"rule": "already_loaded", "detail": "loaded before"}])
    second_path = again.write(tmp_path)
    third_path = again.write(tmp_path)
    base = f"health_2026-11-24.csv.{SHA[:8]}"
    assert (second_path.name, third_path.name) == (f"{base}.2.receipt.json", f"{base}.3.receipt.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{base}.{n}receipt.{ext}" for n in ("", "2.", "3.") for ext in ("json", "txt")
    )
    # The first receipt (the one the ledger points to) is untouched.
    assert first_path.read_text(encoding="utf-8") == first_json
    assert first_path.with_suffix(".txt").read_text(encoding="utf-8") == first_txt
    assert json.loads(second_path.read_text(encoding="utf-8"))["outcome"] == "duplicate"


# ---------------------------------------------------------------------------------------
# Nothing from the rows


def test_a_canary_in_the_rows_never_reaches_the_receipt(tmp_path: Path) -> None:
    """The receipt is built the way intake builds it: from the file's bytes (hash, size),
    its name, and the row numbers, columns and rules the checks found. The canary is a
    value in the rows only; it must not appear in anything the receipt writes."""
    canary = "Qzxcanaryvwq"
    bad_nhs = nhs(3)[:-1] + str((int(nhs(3)[-1]) + 1) % 10)  # a wrong check digit
    rows = [
        {"nhs_number": nhs(1), "given_name": "Ada", "family_name": canary, "postcode": "LS6 2AB"},
        {"nhs_number": bad_nhs, "given_name": canary, "family_name": "Lovelace", "postcode": "LS6 2AB"},
        {"nhs_number": nhs(2), "given_name": "Grace", "family_name": "Hopper", "postcode": canary},
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    assert data.count(canary.encode()) == 3

    r = receipt(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), rows_read=len(rows))
    for number, row in enumerate(rows, start=1):  # data rows count from 1
        if row["nhs_number"] not in (nhs(1), nhs(2)):
            r.rejected_rows.append(RowRejection(number, "nhs_number", "nhs_number_check"))
        if not row["postcode"][0].isalpha() or " " not in row["postcode"]:
            r.rejected_rows.append(RowRejection(number, "postcode", "postcode_format"))
    r.rows_rejected = len({x.row for x in r.rejected_rows})
    r.rows_accepted = r.rows_read - r.rows_rejected
    r.rejected_rows_total = len(r.rejected_rows)
    r.rule_counts = {f"{x.column}:{x.rule}": 1 for x in r.rejected_rows}
    r.accept()
    assert [(x.row, x.column, x.rule) for x in r.rejected_rows] == [
        (2, "nhs_number", "nhs_number_check"),
        (3, "postcode", "postcode_format"),
    ]
    path = r.write(tmp_path / "outbox")

    written = [p.read_bytes() for p in sorted(path.parent.iterdir())]
    assert len(written) == 2
    for text in (json.dumps(r.to_json()), r.to_text(), repr(r), *(b.decode("utf-8") for b in written)):
        assert canary not in text
        assert canary.lower() not in text.lower()
        assert "Lovelace" not in text and "Hopper" not in text


def test_a_rejected_file_lists_values_set_aside_among_its_rejections() -> None:
    """Nothing of a quarantined file is kept, so nothing was set aside: those entries join the
    rejections (in row order), and the receipt still says what to fix."""
    r = receipt(
        rows_read=4,
        rows_accepted=3,
        rows_rejected=1,
        rejected_rows=[RowRejection(3, "upn", "upn_check")],
        rejected_rows_total=1,
        values_set_aside=[RowRejection(1, "DOB", "date_format"), RowRejection(4, "Postcode", "postcode_format")],
        values_set_aside_total=2,
        set_aside_counts={"DOB:date_format": 1, "Postcode:postcode_format": 1},
    )
    assert "Values set aside" in r.to_text() and SET_ASIDE_ADVICE in r.next_steps()
    r.reject("rejected_share_over_threshold", "too many")
    assert [(x.row, x.rule) for x in r.rejected_rows] == [(1, "date_format"), (3, "upn_check"), (4, "postcode_format")]
    assert (r.rejected_rows_total, r.values_set_aside, r.values_set_aside_total, r.set_aside_counts) == (3, [], 0, {})
    assert (r.rows_accepted, r.rows_rejected) == (0, 4)
    assert "Values set aside" not in r.to_text() and SET_ASIDE_ADVICE not in r.next_steps()
    assert ADVICE["date_format"] in r.next_steps()
