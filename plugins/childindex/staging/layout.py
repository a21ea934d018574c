"""The common staging layout: every organisation's accepted rows, standardised and pseudonymised.

One Parquet file per delivered file, at
``STAGING_DIR/organisation=<code>/night=<YYYY-MM-DD>/<sha256 prefix>.parquet``. Only these
columns exist: who sent the row (organisation, its sector, and the authority area the
involvement is in), then the whitelist (:mod:`childindex.whitelist`) with identifiers
replaced by keyed HMACs (and the local id, encrypted, as the organisation's reference).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from childindex.settings import Settings
from childindex.staging.pseudonymise import PSEUDONYM_COLUMNS
from childindex.whitelist import IDENTITY_FIELDS, INVOLVEMENT_FIELDS

# Bookkeeping and pseudonyms first, then the whitelist's identity and involvement fields
# exactly as named there: staging can hold nothing the whitelist does not name.
STAGING_COLUMNS = (
    "night",
    "organisation",  # the sender's code in the registry
    "sector",
    "area",  # GSS code of the authority area the involvement is in
    "source_row",  # data row number in the delivered file, for receipts
    *PSEUDONYM_COLUMNS,
    "local_ref",  # the local id under the reference key, so a notice can name it (staging/reference.py)
    *IDENTITY_FIELDS,
    *INVOLVEMENT_FIELDS,
)


def staging_path(settings: Settings, organisation: str, night: date, sha256: str) -> Path:
    return (
        settings.staging_dir / f"organisation={organisation}" / f"night={night.isoformat()}" / f"{sha256[:16]}.parquet"
    )
