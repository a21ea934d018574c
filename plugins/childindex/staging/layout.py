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
from childindex.staging.pseudonymise import PSEUDONYM_COLUMNS
from childindex.whitelist import IDENTITY_FIELDS, INVOLVEMENT_FIELDS

# Bookkeeping and pseudonyms first, then the whitelist's identity and involvement fields
# exactly as named there: staging can hold nothing the whitelist does not name.
STAGING_COLUMNS = (
    "night",
    "agency",
    "source_row",  # data row number in the delivered file, for receipts
    *PSEUDONYM_COLUMNS,
    *IDENTITY_FIELDS,
    *INVOLVEMENT_FIELDS,
)


def staging_path(settings: Settings, agency: str, night: date, sha256: str) -> Path:
    return settings.staging_dir / f"agency={agency}" / f"night={night.isoformat()}" / f"{sha256[:16]}.parquet"
