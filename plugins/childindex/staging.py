"""The common staging layout: every agency's accepted rows, standardised and pseudonymised.

One Parquet file per delivered file, at
``STAGING_DIR/agency=<agency>/night=<YYYY-MM-DD>/<sha256 prefix>.parquet``. Only these
columns exist; they are the whitelist (:mod:`childindex.whitelist`) with identifiers
replaced by keyed HMACs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.settings import Settings

STAGING_COLUMNS = (
    "night",
    "agency",
    "source_row",
    "source_key",  # HMAC of the agency's local id
    "nhs_key",  # HMAC of the NHS number, or NULL
    "upn_key",  # HMAC of the UPN, or NULL
    "match_key",  # HMAC of normalised given name | family name | date of birth
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "service",
    "contact_route",
    "involvement_start",
    "involvement_end",
)


def staging_path(settings: Settings, agency: str, night: date, sha256: str) -> Path:
    assert settings.staging_dir is not None
    return settings.staging_dir / f"agency={agency}" / f"night={night.isoformat()}" / f"{sha256[:16]}.parquet"
