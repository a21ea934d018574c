"""Keyed pseudonymisation of identifiers: HMAC-SHA256, computed in bulk inside DuckDB.

Each kind of identifier gets its own domain prefix, so the same digits sent as an NHS
number and as a local id never produce the same pseudonym. HMAC is built from DuckDB's
``sha256`` (RFC 2104: H(K^opad || H(K^ipad || m))) so millions of values are hashed as one
set operation; :func:`hmac_hex` is the plain-Python reference the tests compare against.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

_BLOCK = 64  # SHA-256 block size in bytes


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
    message = f"encode(${domain_param} || ':' || ({expr}))"
    return f"sha256(${opad_param} || unhex(sha256(${ipad_param} || {message})))"


def key_params(key: bytes) -> dict[str, bytes]:
    """Bound parameters for :func:`hmac_sql`."""
    ipad, opad = _pads(key)
    return {"ipad": ipad, "opad": opad}


def key_id(key: bytes) -> str:
    """A short public id of a key (an HMAC of a fixed label): names the key in the index and
    in certificates so a wrong or stale key is caught, and reveals nothing of it."""
    return hmac.new(key, b"childindex key id", hashlib.sha256).hexdigest()[:16]


class KeyMismatch(RuntimeError):
    """The configured key is not the one the index's pseudonyms were made with."""


def verify_key(url: str, key: bytes) -> int | None:
    """The index's current key epoch when ``key`` is its key, None while no key is recorded;
    raises KeyMismatch otherwise. Reads only (``childindex doctor``)."""
    from childindex.index.db import engine_for

    with engine_for(url).connect() as conn:
        return _verified(conn, key_id(key))


def check_key(url: str, key: bytes, today: date) -> int:
    """The index's current key epoch, after checking ``key`` is its key; the first use of
    an index records the key as epoch 1. Raises KeyMismatch otherwise."""
    from childindex.index.db import engine_for
    from childindex.index.models import KeyEpoch

    wanted = key_id(key)
    with engine_for(url).begin() as conn:
        epoch = _verified(conn, wanted)
        if epoch is None:
            conn.execute(KeyEpoch.__table__.insert().values(epoch=1, key_id=wanted, since=today))
            return 1
        return epoch


def _verified(conn, wanted: str) -> int | None:  # noqa: ANN001
    from sqlalchemy import func, select

    from childindex.index.models import KeyEpoch

    current = conn.execute(select(KeyEpoch).order_by(KeyEpoch.epoch.desc()).limit(1)).first()
    if current is None:
        return None
    if current.key_id != wanted:
        epochs = conn.execute(select(func.count()).select_from(KeyEpoch)).scalar_one()
        raise KeyMismatch(
            f"the index's pseudonyms were made with key {current.key_id} (epoch {current.epoch} of {epochs}); "
            f"the configured key is {wanted}. Set CHILDINDEX_PSEUDONYMISATION_KEY(_FILE) to the index's key, "
            "or finish the rotation (docs/keys.md)"
        )
    return current.epoch
