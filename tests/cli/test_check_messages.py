"""``childindex check``'s messages for the mistakes agencies make: each names what the file
really is and what the contract expects, every file-level problem at once, never a value."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from childindex.cli import app
from tests.helpers import child, file_name, render

runner = CliRunner()
NIGHT = date(2026, 11, 24)
CANARY = "Qzcanary"  # a synthetic value that no output may contain
WIDE = {"COLUMNS": "400"}


def _rows(sector: str, n: int = 5) -> list[dict[str, object]]:
    return [child(i, sector, given_name=f"{CANARY}{chr(65 + i)}", family_name=CANARY) for i in range(1, n + 1)]


def _check(path: Path, contract: str) -> tuple[int, str, dict]:
    text = runner.invoke(app, ["check", "--contract", contract, str(path)], env=WIDE)
    data = runner.invoke(app, ["check", "--contract", contract, str(path), "--json"], env=WIDE)
    assert CANARY not in text.output and CANARY not in data.output, "a value from the file was shown"
    return text.exit_code, text.output, json.loads(data.output)


def _problems(receipt: dict) -> list[tuple[str, str]]:
    return [(p["rule"], p["detail"]) for p in receipt["file_problems"]]


def test_a_semicolon_file_is_said_to_be_one(tmp_path: Path) -> None:
    path = tmp_path / file_name("education_mis", NIGHT)
    path.write_bytes(render("education_mis", _rows("education")).replace(b",", b";"))
    code, text, receipt = _check(path, "education_mis")
    assert code == 2
    assert _problems(receipt) == [("delimiter", "the file is separated by semicolons; the contract expects commas")]
    assert "File problem: delimiter: the file is separated by semicolons; the contract expects commas" in text
    assert "every column" not in text and "missing_columns" not in text


def test_a_tab_file_for_a_pipe_contract(tmp_path: Path) -> None:
    path = tmp_path / file_name("social_care_cms", NIGHT)
    path.write_bytes(render("social_care_cms", _rows("social_care")).replace(b"|", b"\t"))
    code, _, receipt = _check(path, "social_care_cms")
    assert code == 2
    assert _problems(receipt) == [("delimiter", "the file is separated by tabs; the contract expects pipes")]


def test_a_cp1252_byte_in_a_utf8_file_is_located_by_line_and_byte(tmp_path: Path) -> None:
    data = render("health_chis", _rows("health"))
    lines = data.split(b"\n")
    # Line 4 of the file (the header is line 1): an e-acute written the Windows way.
    lines[3] = lines[3].replace(CANARY.encode(), (CANARY + "\u00e9").encode("cp1252"), 1)
    broken = b"\n".join(lines)
    offset = broken.index(b"\xe9")
    path = tmp_path / file_name("health_chis", NIGHT)
    path.write_bytes(broken)
    code, text, receipt = _check(path, "health_chis")
    assert code == 2
    assert _problems(receipt) == [
        (
            "encoding",
            f"the file is not valid UTF-8: first at line 4 (byte offset {offset}); "
            "it looks like Windows-1252 or Latin-1",
        )
    ]
    assert "line 4 (byte offset" in text


def test_utf8_sent_for_a_windows_1252_contract_and_utf16(tmp_path: Path) -> None:
    data = render("education_mis", _rows("education")).decode("cp1252")
    utf8 = tmp_path / "utf8" / file_name("education_mis", NIGHT)
    utf8.parent.mkdir()
    utf8.write_bytes(data.replace(CANARY + "B", CANARY + "\u00c9").encode("utf-8"))
    _, _, receipt = _check(utf8, "education_mis")
    [(rule, detail)] = _problems(receipt)
    assert rule == "encoding" and detail.startswith("the file is UTF-8 (its first character outside ASCII, at line 2")
    assert detail.endswith("the contract expects Windows-1252 (cp1252)")
    bom = tmp_path / "bom" / file_name("education_mis", NIGHT)
    bom.parent.mkdir()
    bom.write_bytes(b"\xef\xbb\xbf" + data.encode("cp1252"))
    _, _, receipt = _check(bom, "education_mis")
    assert _problems(receipt) == [
        ("encoding", "the file is UTF-8 (it starts with a byte-order mark); the contract expects Windows-1252 (cp1252)")
    ]
    utf16 = tmp_path / "utf16" / file_name("health_chis", NIGHT)
    utf16.parent.mkdir()
    utf16.write_bytes(render("health_chis", _rows("health")).decode().encode("utf-16"))
    _, _, receipt = _check(utf16, "health_chis")
    assert _problems(receipt) == [("encoding", "the file is UTF-16; the contract expects UTF-8")]


def test_a_renamed_header_gets_the_nearest_contract_name(tmp_path: Path) -> None:
    """education_mis calls the date of birth DOB: a file with DateOfBirth (health_chis's name
    for it) or a misspelt LegalSurnme is told which column to rename."""
    data = render("education_mis", _rows("education"))
    header, rest = data.split(b"\n", 1)
    header = header.replace(b"DOB", b"DateOfBirth").replace(b"LegalSurname", b"LegalSurnme")
    path = tmp_path / file_name("education_mis", NIGHT)
    path.write_bytes(header + b"\n" + rest)
    code, text, receipt = _check(path, "education_mis")
    assert code == 2
    assert _problems(receipt) == [
        (
            "missing_columns",
            "required columns missing: LegalSurname (column 4 is LegalSurnme: rename it LegalSurname?); "
            "DOB (column 5 is DateOfBirth: rename it DOB?)",
        )
    ]


def test_a_file_without_its_header_row_quotes_nothing_from_its_first_line(tmp_path: Path) -> None:
    data = render("health_chis", _rows("health")).split(b"\n", 1)[1]
    path = tmp_path / file_name("health_chis", NIGHT)
    path.write_bytes(data)
    _, _, receipt = _check(path, "health_chis")
    [(rule, detail)] = _problems(receipt)
    assert rule == "missing_columns" and detail.startswith("the first line has none of the contract's column names")


def test_a_bad_file_name_is_explained_with_an_example(tmp_path: Path) -> None:
    path = tmp_path / "EDU_PUPILS_latest.csv"
    path.write_bytes(render("education_mis", _rows("education")))
    code, text, receipt = _check(path, "education_mis")
    assert code == 2
    assert _problems(receipt) == [
        (
            "file_name",
            "it does not fit the contract: expected EDU_PUPILS_YYYYMMDD.csv (YYYYMMDD: the night the extract was "
            "taken), for example EDU_PUPILS_20261124.csv, or the same name ending .gz when compressed",
        )
    ]
    assert "(?P<night>" not in text
    # The rows were still checked, so everything is reported at once.
    assert receipt["rows_read"] == 5
    for name, why in [("edu_pupils_20261124.csv", "it differs in upper and lower case"),
                      ("EDU_PUPILS_20261341.csv", "its night is not a real date")]:  # fmt: skip
        other = tmp_path / name
        other.write_bytes(path.read_bytes())
        _, _, receipt = _check(other, "education_mis")
        assert receipt["file_problems"][0]["detail"].startswith(why + ": expected EDU_PUPILS_YYYYMMDD.csv")


def test_several_problems_at_once(tmp_path: Path) -> None:
    """A badly named, semicolon-separated file with a renamed column and a Windows byte in a
    UTF-8 contract: all four problems, in one receipt."""
    data = render("health_chis", _rows("health")).replace(b",", b";").replace(b"DateOfBirth", b"DOB", 1)
    data = data.replace(CANARY.encode(), b"\x92" + CANARY.encode(), 1)
    path = tmp_path / "health_latest.csv"
    path.write_bytes(data)
    code, text, receipt = _check(path, "health_chis")
    assert code == 2
    assert [rule for rule, _ in _problems(receipt)] == ["file_name", "encoding", "delimiter", "missing_columns"]
    assert receipt["file_problems"][3]["detail"] == (
        "required columns missing: DateOfBirth (column 5 is DOB: rename it DateOfBirth?)"
    )
    assert text.count("File problem: ") == 4


def test_row_problems_are_summarised_by_rule_first_in_words_and_numbered_as_a_spreadsheet(tmp_path: Path) -> None:
    rows = _rows("health", 20)  # 3 rows of 20 broken: under the default 20% limit
    rows[1]["sex"] = "Q"  # row 3: kept, the code set aside
    rows[3]["service"] = "Q"  # row 5: rejected
    rows[4]["involvement_start"] = "2020-09-01"  # row 6: not DD/MM/YYYY
    path = tmp_path / file_name("health_chis", NIGHT)
    path.write_bytes(render("health_chis", rows))
    code, text, receipt = _check(path, "health_chis")
    assert code == 1
    sex = "one of 1 (male), 2 (female), 0 (not known), 9 (not known)"
    services = "one of health_visiting, school_nursing, community_paediatrics"
    assert receipt["rule_summary"] == [
        {"rule": "code_set", "column": "Gender", "rows": 1, "expected": sex},
        {"rule": "code_set", "column": "ServiceCode", "rows": 1, "expected": services},
        {
            "rule": "date_format",
            "column": "CaseloadStart",
            "rows": 1,
            "expected": "a date written DD/MM/YYYY, like 09/03/2014",
        },
    ]
    lines = text.splitlines()
    summary = lines.index("Rules broken (rule, column, rows affected: what the contract expects):")
    rejected = lines.index("Rejected rows (numbered as in a spreadsheet: the header is row 1):")
    assert summary < rejected
    assert lines[summary + 3] == "  date_format  CaseloadStart  1 row: a date written DD/MM/YYYY, like 09/03/2014"
    assert lines[rejected + 1 : rejected + 3] == [
        "  row 5: column ServiceCode: code_set",
        "  row 6: column CaseloadStart: date_format",
    ]
    assert "  row 3: column Gender: code_set" in text
