"""Keyed pseudonymisation of identifiers: HMAC-SHA256, computed in bulk inside DuckDB.

Each kind of identifier gets its own domain prefix, so the same digits sent as an NHS
number and as a local id never produce the same pseudonym. HMAC is built from DuckDB's
``sha256`` (RFC 2104: H(K^opad || H(K^ipad || m))) so millions of values are hashed as one
set operation; :func:`hmac_hex` is the plain-Python reference the tests compare against.
"""

from __future__ import annotations

import hashlib
import hmac

from childindex.validation.sql import STD, normalise_name_sql

_BLOCK = 64  # SHA-256 block size in bytes


# The pseudonyms of a record, as staging and the index's source_record name them.
PSEUDONYM_COLUMNS = (
    "source_key",  # HMAC of the organisation's local id (its own domain: ids are unique only within it)
    "nhs_key",  # HMAC of the NHS number, or NULL
    "upn_key",  # HMAC of the UPN, or NULL
    "match_key",  # HMAC of normalised given name | family name | date of birth; NULL when one is blank
)


def pseudonym_sql(key: bytes, organisation: str, pads: str = "") -> tuple[dict[str, str], dict[str, object]]:
    """SELECT expressions over the standardised rows (``std``) for the four pseudonyms, and
    their bound parameters; ``pads`` names a second key's parameters (key rotation)."""
    ipad, opad = f"ipad{pads}", f"opad{pads}"
    params: dict[str, object] = {
        **{name + pads: value for name, value in key_params(key).items()},
        "d_local": local_id_domain(organisation),
        "d_nhs": "nhs_number",
        "d_upn": "upn",
        "d_match": "name_dob",
    }
    given, family = normalise_name_sql(f"{STD}given_name"), normalise_name_sql(f"{STD}family_name")
    name_dob = f"{given} || '|' || {family} || '|' || CAST({STD}date_of_birth AS VARCHAR)"
    exprs = {
        "source_key": hmac_sql(f"{STD}local_id", "d_local", ipad, opad),
        "nhs_key": hmac_sql(f"{STD}nhs_number", "d_nhs", ipad, opad),
        "upn_key": hmac_sql(f"{STD}upn", "d_upn", ipad, opad),
        "match_key": hmac_sql(name_dob, "d_match", ipad, opad),
    }
    assert tuple(exprs) == PSEUDONYM_COLUMNS
    return exprs, params


def local_id_domain(organisation: str) -> str:
    """The HMAC domain of an organisation's local ids: two organisations' record 123 are
    different children, so their pseudonyms must differ."""
    return f"local_id:{organisation}"


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_hex(key: bytes, domain: str, value: str) -> str:
    """Reference implementation for one value (tests, ground-truth joins)."""
    return hmac.new(key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()


def hmac_sql(expr: str, domain_param: str, ipad_param: str = "ipad", opad_param: str = "opad") -> str:
    """SQL expression for the HMAC of a VARCHAR ``expr`` (NULL stays NULL).

    The key pads and domain are bound parameters (``$ipad``, ``$opad``, ``$<domain_param>``),
    never pasted into the SQL text.
    """
    return hmac_sql_of(expr, f"${domain_param}", f"${ipad_param}", f"${opad_param}")


def hmac_sql_of(expr: str, domain: str, ipad: str, opad: str) -> str:
    """:func:`hmac_sql` with the domain and the key pads given as SQL expressions: bound
    parameters, or columns (a table of keys, a domain per row). Never a key pasted as text."""
    message = f"encode({domain} || ':' || ({expr}))"
    return f"sha256({opad} || unhex(sha256({ipad} || {message})))"


def key_params(key: bytes) -> dict[str, bytes]:
    """Bound parameters for :func:`hmac_sql`."""
    ipad, opad = _pads(key)
    return {"ipad": ipad, "opad": opad}


def key_id(key: bytes) -> str:
    """A short public id of a key (an HMAC of a fixed label): names the key in the index and
    in certificates so a wrong or stale key is caught, and reveals nothing of it."""
    return hmac.new(key, b"childindex key id", hashlib.sha256).hexdigest()[:16]
