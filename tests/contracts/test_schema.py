"""Each contract's Table Schema, checked by the format's own validator (frictionless): valid as
a schema, true to the contract on the page's example row and on generated extracts, and
failing the rows the contract refuses."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from frictionless import Dialect, Resource, Schema
from frictionless.formats import CsvControl
from typer.testing import CliRunner

from childindex.cli import app
from childindex.contracts import contract_names, load_contract
from childindex.contracts.docs import render_schema
from childindex.contracts.schema import table_schema
from tests.helpers import child, file_name, nhs, render

ROOT = Path(__file__).resolve().parents[2]
NIGHT = date(2026, 11, 24)


@pytest.fixture(scope="module")
def examples() -> dict[str, list[str]]:
    from childindex.simulation.synthetic.examples import example_rows

    return example_rows()


def _validate(contract_name: str, path: Path) -> list[tuple[int | None, str, str | None]]:
    """frictionless's errors for the file: (row number, error type, field name)."""
    c = load_contract(contract_name)
    resource = Resource(
        path=path.name,
        basepath=str(path.parent),  # frictionless refuses an absolute path as unsafe
        format="csv",
        encoding=c.file.encoding,
        dialect=Dialect(controls=[CsvControl(delimiter=c.file.delimiter)]),
        schema=Schema.from_descriptor(table_schema(c)),
    )
    report = resource.validate()
    return [(row, kind, field) for row, kind, field in report.flatten(["rowNumber", "type", "fieldName"])]


@pytest.mark.parametrize("name", contract_names())
def test_each_schema_is_a_valid_table_schema_and_on_disk(name: str) -> None:
    descriptor = table_schema(load_contract(name))
    report = Schema.validate_descriptor(descriptor)
    assert report.valid, report.flatten(["type", "note"])
    on_disk = ROOT / "docs" / "contracts" / f"{name}.schema.json"
    assert json.loads(on_disk.read_text(encoding="utf-8")) == descriptor, "run 'childindex contracts docs'"
    printed = CliRunner().invoke(app, ["contracts", "schema", name])
    assert printed.exit_code == 0 and printed.output == render_schema(load_contract(name))
    c = load_contract(name)
    assert [f["name"] for f in descriptor["fields"]] == list(c.column_names)
    local_id = c.column_for("local_id")
    assert local_id is not None and descriptor["primaryKey"] == [local_id.name]


@pytest.mark.parametrize("name", contract_names())
def test_the_example_row_passes_the_schema_and_intake_and_a_bad_one_fails(
    tmp_path: Path, examples: dict[str, list[str]], name: str
) -> None:
    """The page's example row is valid under the schema and accepted by ``childindex check``
    whole; each deliberately broken copy fails the schema on the column broken."""
    from childindex.contracts.docs import render
    from childindex.intake.check import check_file, unregistered
    from childindex.settings import load_settings

    c = load_contract(name)
    page = render(c, examples[name])
    block = page.split("```text\n", 1)[1].split("\n```", 1)[0]
    good = tmp_path / "good.csv"
    good.write_bytes((block + "\n").encode(c.file.encoding))
    assert _validate(name, good) == []
    settings = load_settings(data_dir=tmp_path / "data")
    named = tmp_path / "named" / file_name(name, NIGHT)
    named.parent.mkdir()
    named.write_bytes(good.read_bytes())
    receipt = check_file(settings, unregistered(name), named, NIGHT)
    assert (receipt.outcome, receipt.rows_accepted, receipt.incomplete_rows) == ("accepted", 1, {})

    header, row = block.split("\n")
    [fields] = csv.reader([row], delimiter=c.file.delimiter)
    sex = c.column_names.index(c.column_for("sex").name)  # type: ignore[union-attr]
    dob = c.column_names.index(c.column_for("date_of_birth").name)  # type: ignore[union-attr]
    service = c.column_names.index(c.column_for("service").name)  # type: ignore[union-attr]
    for index, value, error in [
        (sex, "Q9", "constraint-error"),  # in no contract's codes
        (dob, "2014-13-45", "type-error"),
        (service, "", "constraint-error"),
    ]:
        bad = list(fields)
        bad[index] = value
        path = tmp_path / f"bad-{index}.csv"
        out = io.StringIO()
        csv.writer(out, delimiter=c.file.delimiter, lineterminator="\n").writerow(bad)
        path.write_bytes((header + "\n" + out.getvalue()).encode(c.file.encoding))
        assert _validate(name, path) == [(2, error, c.column_names[index])]


@pytest.mark.parametrize("layouts", ["tests", "other"])
def test_generated_extracts_pass_their_schema(tmp_path: Path, layouts: str) -> None:
    """Every generated extract (with the columns outside the contract each system sends) is
    valid under its contract's schema, as intake accepts it whole."""
    from childindex.organisations import load_registry
    from childindex.organisations.registry import parse_registry
    from childindex.simulation.synthetic import generate_night
    from tests.conftest import TEST_REGISTRY
    from tests.simulation.synthetic_helpers import OTHER_LAYOUTS

    registry = load_registry(TEST_REGISTRY) if layouts == "tests" else parse_registry(OTHER_LAYOUTS, "other")
    result = generate_night(tmp_path / "drop", tmp_path / "truth", registry=registry, children=600)
    for code, path in result.files.items():
        contract = registry.get(code).contract
        assert result.rows[code] > 0
        assert _validate(contract, path) == [], (contract, path.name)


def test_rows_the_schema_fails_are_rows_intake_flags(tmp_path: Path) -> None:
    """Row for row: frictionless flags exactly the rows intake rejects or sets a value aside
    in for the rules a Table Schema can say (required, length, date format, codes, the
    postcode's shape, a repeated id); rules it cannot say (check digits) it lets through."""
    from childindex.intake.check import check_file, unregistered
    from childindex.receipts import HEADER_ROWS
    from childindex.settings import load_settings

    rows = [
        child(1),
        child(2, date_of_birth="31/02/2015"),  # not a date: set aside (missing_identity: stage)
        child(3, nhs_number="9990000019"),  # a bad check digit: beyond a Table Schema
        child(4, service="X"),
        child(5, postcode="NOTAPOSTCODE"),
        child(6, contact_route=None),
        child(7, given_name="N" * 101),
        child(8, local_id="H0000009"),
        child(9),  # shares its id with row 8's
        child(10, postcode="ls6  2ab"),  # spacing and case do not matter, to either
        child(11, nhs_number=" ".join((nhs(11)[:3], nhs(11)[3:6], nhs(11)[6:]))),  # spaced, as intake allows
    ]
    path = tmp_path / "health_2026-11-24.csv"
    path.write_bytes(render("health_chis", rows))
    settings = load_settings(data_dir=tmp_path / "data")
    settings.validation.max_rejected_share = 1.0
    receipt = check_file(settings, unregistered("health_chis"), path, NIGHT)
    flagged = {r.row for r in receipt.rejected_rows + receipt.values_set_aside if r.rule != "nhs_number_check"}
    assert flagged == {i + HEADER_ROWS for i in (2, 4, 5, 6, 7, 8, 9)}
    # A repeated id: frictionless flags the repeat, intake every row holding it (which is right
    # cannot be known); otherwise the same rows.
    schema_rows = {row for row, _, _ in _validate("health_chis", path)}
    assert schema_rows == flagged - {8 + HEADER_ROWS}


def test_columns_in_any_order_extras_and_absent_optional_ones_pass_a_missing_required_one_fails(tmp_path: Path) -> None:
    """fieldsMatch "partial", as intake reads a header: by name; a required column must be there."""
    fine = tmp_path / "fine.csv"
    fine.write_bytes(render("health_chis", [child(1), child(2)], drop_columns=("CaseloadEnd",), extras={"Extra": "1"}))
    assert _validate("health_chis", fine) == []
    short = tmp_path / "short.csv"
    short.write_bytes(render("health_chis", [child(1)], drop_columns=("ServiceCode",)))
    assert _validate("health_chis", short) == [(None, "missing-label", "ServiceCode")]
