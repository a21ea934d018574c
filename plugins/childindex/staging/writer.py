"""Writing a checked file's accepted rows, pseudonymised, as its staging Parquet file.

The file is written under a temporary name and renamed into place only when it is whole,
so a crash or an error never leaves a staging file behind (a rerun would link it).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from childindex.settings import private_dir
from childindex.staging.layout import STAGING_COLUMNS, staging_path
from childindex.staging.pseudonymise import pseudonym_sql
from childindex.staging.reference import reference_params, reference_sql
from childindex.validation.sql import STD, postcode_valid_sql, quote_str
from childindex.whitelist import IDENTITY_FIELDS, INVOLVEMENT_FIELDS, SENSITIVE_SERVICE

if TYPE_CHECKING:
    from childindex.organisations.registry import Organisation
    from childindex.settings import Settings
    from childindex.validation.validate import Checked


def write_staging(checked: Checked, settings: Settings, organisation: Organisation, night: date, sha256: str) -> Path:
    """Write the accepted rows of ``checked`` to the file's place in the staging layout; returns it."""
    out = staging_path(settings, organisation.code, night, sha256)
    tmp = out.with_suffix(".tmp")
    districts = {d: a for d, a in settings.registry.district_areas().items() if a in organisation.areas}
    try:
        _copy_accepted(checked, (settings.key, settings.reference_key_bytes), organisation, districts, night, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _copy_accepted(
    checked: Checked,
    keys: tuple[bytes, bytes],
    organisation: Organisation,
    districts: dict[str, str],
    night: date,
    target: Path,
) -> None:
    """One COPY: the accepted rows in file order, identifiers replaced by their pseudonyms
    and the local id by its reference; ``keys``: (pseudonymisation, reference)."""
    pseudonyms, params = pseudonym_sql(keys[0], organisation.code)
    params.update(reference_params(keys[1], organisation.code))
    params.update(
        night=night,
        organisation=organisation.code,
        sector=organisation.sector,
        home_area=organisation.areas[0],
        districts=list(districts),
        district_areas=list(districts.values()),
    )
    # An organisation serving several areas places a record by its postcode district; one
    # without a known district (or a sensitive one, postcode withheld) is in its first area.
    # A postcode intake set aside as malformed (the contract's missing_identity) is staged blank.
    postcode = f"CASE WHEN {postcode_valid_sql(STD + 'postcode')} THEN {STD}postcode END"
    outward = f"split_part({postcode}, ' ', 1)"
    area = f"coalesce(list_extract($district_areas, list_position($districts, {outward})), $home_area)"
    select = {
        "night": "$night::DATE",
        "organisation": "$organisation",
        "sector": "$sector",
        "area": f"CASE WHEN coalesce({STD}sensitive, false) THEN $home_area ELSE {area} END",
        "source_row": "_row",
        **pseudonyms,
        "local_ref": reference_sql(f"{STD}local_id"),
        **{f: STD + f for f in (*IDENTITY_FIELDS, *INVOLVEMENT_FIELDS)},
        # A shielded involvement: the index learns that a sensitive service is involved and
        # how to reach it, never which service, nor the address on that record.
        "service": f"CASE WHEN coalesce({STD}sensitive, false) THEN '{SENSITIVE_SERVICE}' ELSE {STD}service END",
        "postcode": f"CASE WHEN coalesce({STD}sensitive, false) THEN NULL ELSE {postcode} END",
    }
    assert tuple(select) == STAGING_COLUMNS, "staging layout and writer disagree"
    private_dir(target.parent)
    body = ", ".join(f"{expr} AS {name}" for name, expr in select.items())
    checked.con.execute(
        f"COPY (SELECT {body} FROM {checked.accepted} ORDER BY _row) "
        f"TO '{quote_str(target)}' (FORMAT parquet, COMPRESSION zstd)",
        params,
    )
