"""The bad-input corpus: one entry per broken delivery, with its exact expected receipt.

Each case places bytes (or a symlink, or an upload still in progress) in one organisation's
drop folder (the tests' registry's organisation of the case's sector, sending that sector's
contract) and says exactly what intake must answer. A case is one kind of breakage, or a few
row-level kinds in different rows of one file (``kinds``): every file that reaches the GX
suite costs most of a second, twice (intake and check), and the corpus must run in a minute.

Every file is synthetic; values that break a rule carry the marker ``MARK`` (or are listed
in ``secrets``), so a test can prove that no value from the file reaches a receipt.

Row numbers here count data rows from 1 (the header is not a row): in the files built here,
data row ``i`` is ``child(i, sector)`` unless a case says otherwise. Receipts number rows as
a spreadsheet does (the header is row 1), so the test compares ``i + 1``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from childindex.contracts import Contract, load_contract
from childindex.validation.sql import UPN_LETTERS
from tests.helpers import child, drop, file_name, nhs, render, upn

MARK = "Qzcorpus"
CLEAN_NIGHT = date(2026, 11, 23)  # the night already in the index before each case
NIGHT = date(2026, 11, 24)  # the night of the broken delivery

Row = tuple[int, str, str]


@dataclass
class Delivery:
    """What a builder put in the drop folder."""

    path: Path  # the drop-folder entry (the ``.part`` file for an upload in progress)
    name: str  # the file's final name, under which intake (and check) see it
    data: bytes | None  # the complete file's bytes; None for a symlink
    on_disk: bytes | None = None  # bytes in the drop folder now, when the upload is incomplete
    complete: Callable[[], None] | None = None  # finishes an incomplete upload
    target: Path | None = None  # a symlink's target, outside the drop folder


Builder = Callable[[Any, str, Path], Delivery]  # (settings, organisation code, scratch dir outside the data dir)


@dataclass(frozen=True)
class Case:
    id: str
    sector: str  # the tests' registry's organisation of this sector receives it (helpers.ORG)
    build: Builder
    outcome: str  # accepted | accepted_with_rejections | rejected | duplicate | not picked up
    file_rules: tuple[str, ...] = ()
    rejected: tuple[Row, ...] = ()
    set_aside: tuple[Row, ...] = ()  # malformed identity values in rows kept (missing_identity)
    counts: tuple[int, int, int] = (0, 0, 0)  # rows read, accepted, rejected
    incomplete: dict[str, int] = field(default_factory=dict)  # accepted rows with a blank identity field, by column
    dropped: tuple[str, ...] = ()
    optional_missing: tuple[str, ...] = ()
    secrets: tuple[str, ...] = (MARK,)  # values in the file that no receipt may contain
    policy: dict[str, Any] = field(default_factory=dict)  # settings.validation overrides
    registry: dict[str, Any] = field(default_factory=dict)  # the organisation's own registry entry overrides
    then: str | None = None  # for "not picked up": the outcome once the upload completes
    check: tuple[str, tuple[str, ...], tuple[int, int, int]] | None = None  # check differs (needs history)
    xfail: str | None = None
    kinds: tuple[str, ...] = ()  # the kinds of broken input this file holds (default: its id)

    def all_kinds(self) -> tuple[str, ...]:
        return self.kinds or (self.id,)


# --------------------------------------------------------------------------- file contents


def rows(sector: str, n: int = 10, bad: dict[int, dict[str, object]] | None = None) -> list[dict[str, object]]:
    """``n`` valid rows, row ``i`` being ``child(i)``, with ``bad[i]`` replacing fields."""
    bad = bad or {}
    return [child(i, sector, **bad.get(i, {})) for i in range(1, n + 1)]


def csv(sector: str, n: int = 10, bad: dict[int, dict[str, object]] | None = None, **kw: Any) -> bytes:
    """A file in the sector's contract (the tests' registry's)."""
    return render(sector, rows(sector, n, bad), **kw)


def edit_line(data: bytes, line: int, old: bytes, new: bytes) -> bytes:
    """Replace ``old`` in physical line ``line`` (0 = the header) of ``data``."""
    lines = data.split(b"\n")
    assert old in lines[line], (line, old)
    lines[line] = lines[line].replace(old, new, 1)
    return b"\n".join(lines)


def clean_bytes(sector: str, contract: str | None = None) -> bytes:
    """The clean night loaded before every case: four children not used by any case (in
    ``contract``, by default the sector's in the tests' registry)."""
    return render(contract or sector, [child(i, sector) for i in range(101, 105)])


def wrong_upn_letter(u: str) -> str:
    return next(c for c in UPN_LETTERS if c != u[0]) + u[1:]


def wrong_nhs_digit(n: str) -> str:
    return n[:9] + str((int(n[9]) + 1) % 10)


def headerless(sector: str) -> bytes:
    """A file whose header row is missing: its first line is a child's data."""
    body = render(sector, rows(sector, 10, {i: {"given_name": MARK, "family_name": MARK} for i in range(1, 11)}))
    return body.split(b"\n", 1)[1]


def sc_cp1252_row() -> bytes:
    """Social care rows with a Windows-1252 apostrophe (byte 0x92, a C1 control in Latin-1)."""
    return csv("social_care", 10, {10: {"family_name": MARK + "~Brien"}}).replace(b"~", b"\x92")


# --------------------------------------------------------------------------- builders


def _contract(settings: Any, organisation: str) -> Contract:
    """The contract the organisation sends, as the registry says."""
    return load_contract(settings.registry.get(organisation).contract)


def put(data: bytes, name: str | None = None) -> Builder:
    """A complete upload of ``data`` (named as the contract says unless ``name``)."""

    def build(settings: Any, organisation: str, scratch: Path) -> Delivery:
        path = drop(settings, organisation, data, NIGHT, name=name)
        return Delivery(path=path, name=path.name, data=data)

    return build


def redelivery() -> Builder:
    """The clean night's file, byte for byte and under its own name, delivered again."""

    def build(settings: Any, organisation: str, scratch: Path) -> Delivery:
        contract = _contract(settings, organisation)
        data = clean_bytes(contract.sector, contract.name)
        path = drop(settings, organisation, data, CLEAN_NIGHT)
        return Delivery(path=path, name=path.name, data=data)

    return build


def symlink(data: bytes) -> Builder:
    """A symlink in the drop folder (with its marker) to a file outside it."""

    def build(settings: Any, organisation: str, scratch: Path) -> Delivery:
        contract = _contract(settings, organisation)
        name = file_name(contract.name, NIGHT)
        target = scratch / "outside" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        folder = settings.drop_folder(organisation)
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / name
        link.symlink_to(target)
        if contract.file.completion == "marker":
            (folder / (name + ".done")).touch()
        return Delivery(path=link, name=name, data=None, target=target)

    return build


def in_progress(data: bytes, written: int | None = None) -> Builder:
    """An upload not yet complete under the contract's convention: no ``.done`` marker yet
    (with only ``written`` bytes so far, when given), or still named ``.part``."""

    def build(settings: Any, organisation: str, scratch: Path) -> Delivery:
        contract = _contract(settings, organisation)
        name = file_name(contract.name, NIGHT)
        folder = settings.drop_folder(organisation)
        folder.mkdir(parents=True, exist_ok=True)
        if contract.file.completion == "rename":
            part = folder / (name + ".part")
            part.write_bytes(data)

            def rename() -> None:
                part.rename(folder / name)

            return Delivery(part, name, data, on_disk=data, complete=rename)
        path = folder / name
        so_far = data[:written] if written is not None else data
        path.write_bytes(so_far)

        def complete() -> None:
            path.write_bytes(data)
            (folder / (name + ".done")).touch()

        return Delivery(path, name, data, on_disk=so_far, complete=complete)

    return build


# --------------------------------------------------------------------------- the corpus

H, E, S = "health", "education", "social_care"
BAD_NHS = wrong_nhs_digit(nhs(3))
BAD_UPN = wrong_upn_letter(upn(5))
FORMULA = '=HYPERLINK("http://example.invalid/x")'

CASES: list[Case] = [
    # ---- whole-file problems
    Case("empty_file", H, put(b""), "rejected", ("empty_file",), secrets=()),
    Case("header_only", H, put(csv(H, 0)), "accepted", secrets=()),  # a night with no changes
    Case("wrong_delimiter_semicolon", H, put(csv(H).replace(b",", b";")), "rejected", ("delimiter",), secrets=()),
    Case(
        "social_care_sent_comma_delimited",
        S,
        put(csv(S).replace(b"|", b",")),
        "rejected",
        ("delimiter",),
        secrets=(),
    ),
    Case(
        "missing_required_column",
        H,
        put(csv(H, drop_columns=("Surname",))),
        "rejected",
        ("missing_columns",),
        secrets=(),
    ),
    Case("duplicated_header", H, put(csv(H, extras={"Forename": MARK})), "rejected", ("duplicate_header",)),
    Case(
        "missing_header_row",
        H,
        put(headerless(H)),
        "rejected",
        ("missing_columns",),
    ),
    # Intake stops at the name; check reads the rows too, to report everything at once.
    Case(
        "wrong_file_name",
        H,
        put(csv(H), name="health_latest.csv"),
        "rejected",
        ("file_name",),
        secrets=(),
        check=("rejected", ("file_name",), (10, 0, 10)),
    ),
    Case(
        "other_contracts_file_name",
        H,
        put(csv(H), name="EDU_PUPILS_20261124.csv"),
        "rejected",
        ("file_name",),
        secrets=(),
        check=("rejected", ("file_name",), (10, 0, 10)),
    ),
    Case("symlink_outside_drop_folder", H, symlink(csv(H, 10, {1: {"given_name": MARK}})), "rejected", ("symlink",)),
    Case(
        "gzip_valid",
        S,
        put(gzip.compress(csv(S)), name="sc_extract_20261124.txt.gz"),
        "accepted",
        counts=(10, 10, 0),
        secrets=(),
    ),
    Case(
        "gzip_corrupt",
        H,
        put(gzip.compress(csv(H))[:40], name="health_2026-11-24.csv.gz"),
        "rejected",
        ("unreadable",),
        secrets=(),
    ),
    Case(
        "gz_name_but_not_gzip", H, put(csv(H), name="health_2026-11-24.csv.gz"), "rejected", ("unreadable",), secrets=()
    ),
    Case(
        "delivered_twice",
        H,
        redelivery(),
        "duplicate",
        ("already_loaded",),
        secrets=(),
        check=("accepted", (), (4, 4, 0)),
    ),
    Case(  # 4 rows last night, 60 tonight: over 3x and more than the slack (50 rows) away
        "row_count_anomaly",
        H,
        put(csv(H, 60)),
        "rejected",
        ("row_count_anomaly",),
        counts=(60, 0, 60),
        secrets=(),
        policy={"row_count_min_history": 1},
        check=("accepted", (), (60, 60, 0)),
    ),
    Case(  # 4 rows last night, 20 tonight: 5x, but 16 rows are a small sender's noise
        "row_count_within_slack",
        H,
        put(csv(H, 20)),
        "accepted",
        counts=(20, 20, 0),
        secrets=(),
        policy={"row_count_min_history": 1},
    ),
    # ---- encodings
    Case(
        "utf8_byte_order_mark_and_crlf",
        H,
        put(b"\xef\xbb\xbf" + csv(H, 10, {7: {"sex": MARK}}).replace(b"\n", b"\r\n")),
        "accepted",
        set_aside=((7, "Gender", "code_set"),),
        counts=(10, 10, 0),
        incomplete={"Gender": 1},
        kinds=("utf8_byte_order_mark", "crlf_line_endings"),
    ),  # Excel's "CSV UTF-8"
    Case(
        "utf8_byte_order_mark_in_cp1252_file",
        E,
        put(b"\xef\xbb\xbf" + csv(E)),
        "rejected",
        ("encoding",),
        secrets=(),
    ),
    Case(
        "cp1252_in_utf8_file",
        H,
        put(edit_line(csv(H), 4, b"GivenE", (MARK + "\u00e9").encode("cp1252"))),
        "rejected",
        ("encoding",),
    ),
    Case(
        "latin1_in_utf8_file",
        H,
        put(edit_line(csv(H), 4, b"FamilyE", (MARK + "\u00f8").encode("latin-1"))),
        "rejected",
        ("encoding",),
    ),
    Case(
        "invalid_utf8_bytes",
        H,
        put(edit_line(csv(H), 7, b"GivenH", MARK.encode() + b"\xc3\x28\xff")),
        "rejected",
        ("encoding",),
    ),
    Case(
        "byte_undefined_in_cp1252",
        E,
        put(edit_line(csv(E), 2, b"GivenC", MARK.encode() + b"\x81")),
        "rejected",
        ("encoding",),
    ),
    Case(
        "cp1252_bytes_in_latin1_file",
        S,
        put(sc_cp1252_row()),
        "rejected",
        ("encoding",),
    ),
    Case(
        "utf16_file", H, put(csv(H, 10, {2: {"given_name": MARK}}).decode().encode("utf-16")), "rejected", ("encoding",)
    ),
    Case(
        "utf16_in_latin1_file",
        S,
        put(csv(S, 10, {2: {"given_name": MARK}}).decode("latin-1").encode("utf-16")),
        "rejected",
        ("encoding",),
    ),
    Case(
        "nul_bytes",
        H,
        put(edit_line(csv(H), 6, b"0113 496 0001", MARK.encode() + b"\x00\x00")),
        "rejected",
        ("unreadable",),
    ),
    # ---- line structure and quoting
    Case(
        "cr_only_line_endings",
        H,
        put(csv(H).replace(b"\n", b"\r")),
        "rejected",
        ("unreadable",),
        secrets=(),
    ),
    Case(
        "truncated_last_line_and_extra_field_after_blank_lines",
        H,
        put(
            edit_line(csv(H, 10, {10: {"given_name": MARK}}), 4, b"GivenE", b"GivenE," + MARK.encode())
            .replace(b"\nH0000003", b"\n\n\nH0000003")
            .rstrip(b"\n")[:-20]
        ),
        "accepted_with_rejections",
        rejected=((4, "*", "field_count"), (10, "*", "field_count")),
        counts=(10, 8, 2),
        kinds=("truncated_last_line", "wrong_field_count_one_row", "blank_lines_are_not_rows"),
    ),
    Case(
        "unbalanced_quote",
        H,
        put(edit_line(csv(H), 3, b"GivenD", b'"' + MARK.encode())),
        "accepted_with_rejections",
        rejected=((3, "*", "field_count"),),
        counts=(10, 9, 1),
    ),
    Case(
        "newline_inside_quotes",
        H,
        put(csv(H, 10, {3: {"contact_route": MARK + "\nX"}})),
        "accepted_with_rejections",
        rejected=((3, "*", "field_count"), (4, "*", "field_count")),
        counts=(11, 9, 2),
    ),
    # ---- columns
    Case(
        "optional_column_missing_extra_and_formula_columns",
        H,
        put(csv(H, extras={"Ethnicity": MARK, FORMULA: MARK}, drop_columns=("CaseloadEnd",))),
        "accepted",
        counts=(10, 10, 0),
        dropped=("Ethnicity", "'" + FORMULA),
        optional_missing=("CaseloadEnd",),
        kinds=("missing_optional_column", "extra_column", "formula_column_name"),
    ),
    Case(
        "field_100k_chars",
        H,
        put(csv(H, 10, {3: {"given_name": MARK * 12_500}})),
        "accepted_with_rejections",
        rejected=((3, "Forename", "max_length"),),
        counts=(10, 9, 1),
    ),
    # ---- row rules
    # Both contracts here say missing_identity: stage. A blank identity field is staged (and
    # counted) when the row has a valid NHS number or UPN, or lacks only one of the names and
    # date of birth; a row lacking two of them and both identifiers is too little to match.
    Case(
        "blank_whitespace_only_and_iso_date_in_social_care_file",
        S,
        put(
            csv(
                S,
                15,
                {
                    2: {"contact_route": None},
                    3: {"involvement_start": "2019-08-17"},
                    5: {"given_name": "    ", "date_of_birth": "  ", "nhs_number": None, "upn": None},
                    7: {"family_name": None},
                    9: {"sex": None, "postcode": " "},
                },
            )
        ),
        "accepted_with_rejections",
        rejected=(
            (2, "TEAM_DUTY_CONTACT", "required"),
            (3, "EPISODE_START", "date_format"),
            (5, "*", "too_little_identity"),
        ),
        counts=(15, 12, 3),
        incomplete={"LAST_NAME": 1, "GENDER": 1, "POSTCODE": 1},
        secrets=("2019-08-17",),
        kinds=(
            "blank_required_value",
            "whitespace_only_value",
            "iso_date_in_social_care_file",
            "blank_identity_fields_without_identifier",
            "blank_identity_value_staged",
        ),
    ),
    Case(
        "tab_and_no_break_space_only_value",
        E,
        put(
            csv(
                E,
                10,
                {
                    2: {"family_name": " \t\u00a0 ", "date_of_birth": "\u00a0", "upn": None},
                    4: {"given_name": "\t"},
                },
            )
        ),
        "accepted_with_rejections",
        rejected=((2, "*", "too_little_identity"),),
        counts=(10, 9, 1),
        incomplete={"LegalForename": 1},
        secrets=(),
    ),
    # A malformed identity value is set aside (staged as a blank, listed in the receipt); with
    # another identity field blank and no identifier the row is too little to match, and the
    # receipt lists both rules among its rejections.
    Case(
        "malformed_identity_values_set_aside",
        S,
        put(
            csv(
                S,
                20,
                {
                    3: {"postcode": MARK + " 1AB"},
                    6: {"date_of_birth": "31.02.2015", "family_name": None, "nhs_number": None, "upn": None},
                    10: {"date_of_birth": "2015-03-01", "sex": MARK},
                },
            )
        ),
        "accepted_with_rejections",
        rejected=((6, "BIRTH_DATE", "date_format"), (6, "*", "too_little_identity")),
        set_aside=((3, "POSTCODE", "postcode_format"), (10, "BIRTH_DATE", "date_format"), (10, "GENDER", "code_set")),
        counts=(20, 19, 1),
        incomplete={"BIRTH_DATE": 1, "GENDER": 1, "POSTCODE": 1},
        secrets=(MARK, "31.02.2015", "2015-03-01"),
        kinds=("malformed_postcode_set_aside", "malformed_identity_value_with_a_blank_rejected"),
    ),
    Case(
        "unknown_sex_and_service_codes",
        E,
        put(csv(E, 10, {6: {"sex": MARK}, 8: {"service": MARK + "x"}})),
        "accepted_with_rejections",
        rejected=((8, "Provision", "code_set"),),
        set_aside=((6, "Sex", "code_set"),),
        counts=(10, 9, 1),
        incomplete={"Sex": 1},
        kinds=("unknown_sex_code", "unknown_service_code"),
    ),
    Case(
        "start_after_end_and_future_date_of_birth",
        H,
        put(
            csv(
                H,
                10,
                {
                    8: {"involvement_start": date(2021, 5, 6), "involvement_end": date(2020, 1, 2)},
                    9: {"date_of_birth": date(2027, 3, 14)},
                },
            )
        ),
        "accepted_with_rejections",
        rejected=((8, "CaseloadStart", "date_order"), (9, "DateOfBirth", "date_of_birth_range")),
        counts=(10, 8, 2),
        secrets=("06/05/2021", "02/01/2020", "14/03/2027"),
        kinds=("start_after_end", "future_date_of_birth"),
    ),
    Case(
        "iso_date_and_bad_nhs_check_digit_in_health_file",
        H,
        put(csv(H, 10, {3: {"date_of_birth": "2013-07-19"}, 6: {"nhs_number": BAD_NHS}})),
        "accepted_with_rejections",
        rejected=((6, "NHSNumber", "nhs_number_check"),),
        set_aside=((3, "DateOfBirth", "date_format"),),
        counts=(10, 9, 1),
        incomplete={"DateOfBirth": 1},
        secrets=("2013-07-19", BAD_NHS),
        kinds=("iso_date_in_health_file", "bad_nhs_check_digit"),
    ),
    Case(
        "slash_date_and_wrong_upn_letter_in_education_file",
        E,
        put(csv(E, 10, {3: {"date_of_birth": "19/07/2013"}, 5: {"upn": BAD_UPN}})),
        "accepted_with_rejections",
        rejected=((5, "UPN", "upn_check"),),
        set_aside=((3, "DOB", "date_format"),),
        counts=(10, 9, 1),
        incomplete={"DOB": 1},
        secrets=("19/07/2013", BAD_UPN),
        kinds=("slash_date_in_education_file", "wrong_upn_check_letter"),
    ),
    Case(
        "two_digit_year",
        H,
        put(csv(H, 10, {3: {"date_of_birth": "19/07/13"}, 6: {"involvement_start": "01/09/20"}})),
        "accepted_with_rejections",
        rejected=((6, "CaseloadStart", "date_format"),),
        set_aside=((3, "DateOfBirth", "date_format"),),
        counts=(10, 9, 1),
        incomplete={"DateOfBirth": 1},
        secrets=("19/07/13", "01/09/20"),
    ),
    Case(
        "duplicated_local_id",
        H,
        put(csv(H, 10, {7: {"local_id": "H0000002", "given_name": MARK}})),
        "accepted_with_rejections",
        rejected=((2, "LocalPatientID", "duplicate_local_id"), (7, "LocalPatientID", "duplicate_local_id")),
        counts=(10, 8, 2),
    ),
    Case(
        "only_duplicate_rows",
        H,
        put(render(H, [child(1, given_name=MARK)] * 3)),
        "rejected",
        ("all_rows_rejected",),
        counts=(3, 0, 3),
        rejected=tuple((i, "LocalPatientID", "duplicate_local_id") for i in (1, 2, 3)),
    ),
    Case(
        "every_id_twice",
        E,
        put(render(E, [child(i % 3, E, given_name=MARK + "abc"[i // 3]) for i in range(6)])),
        "rejected",
        ("all_rows_rejected",),
        counts=(6, 0, 6),
        rejected=tuple((i, "PupilID", "duplicate_local_id") for i in range(1, 7)),
    ),
    Case(
        "too_many_bad_rows",
        H,
        put(csv(H, 10, {i: {"sex": MARK} for i in (2, 5, 8)})),
        "rejected",
        ("rejected_share_over_threshold",),
        counts=(10, 0, 10),
        rejected=tuple((i, "Gender", "code_set") for i in (2, 5, 8)),
    ),
    Case(
        "stricter_organisation_share_limit",
        S,
        put(csv(S, 10, {4: {"sex": MARK}})),
        "rejected",
        ("rejected_share_over_threshold",),
        rejected=((4, "GENDER", "code_set"),),
        counts=(10, 0, 10),
        registry={"max_rejected_share": 0.05},
    ),
    # ---- uploads still in progress: never read, no receipt; picked up once complete
    Case(
        "health_half_written_without_done_marker",
        H,
        in_progress(csv(H), written=700),
        "not picked up",
        then="accepted",
        counts=(10, 10, 0),
        secrets=(),
    ),
    Case(
        "education_still_named_part",
        E,
        in_progress(csv(E)),
        "not picked up",
        then="accepted",
        counts=(10, 10, 0),
        secrets=(),
    ),
]

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
