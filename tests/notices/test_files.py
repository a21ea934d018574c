"""Notice files on their own: merging by id, the CSV's rows, formula-safe cells, no debris."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from childindex.notices.files import CSV_COLUMNS, notice_paths, write_notices

NIGHT = date(2026, 11, 25)


def _inv(code: str, contact: str = "0113 496 0001") -> dict:
    return {"new": True, "sector": "health", "organisation_code": code, "organisation_name": f"Org {code}",
            "area_code": "E06000047", "area_name": "County Durham", "service": "school_nursing",
            "contact_route": contact, "start_date": "2026-01-01", "end_date": None}  # fmt: skip


def test_a_second_run_merges_by_id_and_leaves_no_temporary_file(tmp_path) -> None:
    org = {"code": "RH1", "name": "Test"}
    first = {"notice_id": "a" * 20, "kind": "notice", "references": ["H1"], "involvements": [_inv("X1")]}
    write_notices(tmp_path, org, NIGHT, [first])
    again = {**first, "involvements": [_inv("X1"), _inv("X2")]}
    other = {"notice_id": "b" * 20, "kind": "retraction", "references": ["H2", "H3"], "involvements": [_inv("X3")]}
    document = write_notices(tmp_path, org, NIGHT, [again, other])
    json_path, csv_path = notice_paths(tmp_path, NIGHT)
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(document))
    assert [n["notice_id"] for n in document["notices"]] == ["a" * 20, "b" * 20]
    assert document["notices"][0]["involvements"] == [_inv("X1"), _inv("X2")]
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 + 2 * 1  # 1 reference x 2 involvements, 2 references x 1 involvement
    assert sorted(p.name for p in json_path.parent.iterdir()) == [csv_path.name, json_path.name]


def test_a_cell_a_spreadsheet_would_run_is_neutralised_in_the_csv_only(tmp_path) -> None:
    hostile = '=HYPERLINK("http://example.invalid","call")'
    notice = {"notice_id": "c" * 20, "kind": "notice", "references": ["-H1"],
              "involvements": [_inv("X1", contact=hostile)]}  # fmt: skip
    document = write_notices(tmp_path, {"code": "RH1", "name": None}, NIGHT, [notice])
    assert document["notices"][0]["involvements"][0]["contact_route"] == hostile
    [row] = list(csv.DictReader(io.StringIO(notice_paths(tmp_path, NIGHT)[1].read_text())))
    assert row["contact_route"] == "'" + hostile
    assert row["reference"] == "-H1", "the organisation's own id is left exactly as it sent it"
