"""Key epochs: which key the index's pseudonyms were made with, by its id (never the key).

Intake and linkage call :func:`check_key` before they make or compare a pseudonym, so a
wrong or stale key is refused rather than filling the index with pseudonyms that match
nothing; ``childindex doctor`` reads the same with :func:`verify_key`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from childindex.errors import KeyMismatch
from childindex.index.db import engine_for
from childindex.index.models import KeyEpoch
from childindex.staging.pseudonymise import key_id


def verify_key(url: str, key: bytes) -> int | None:
    """The index's current key epoch when ``key`` is its key, None while no key is recorded;
    raises KeyMismatch otherwise. Reads only (``childindex doctor``)."""
    with engine_for(url).connect() as conn:
        return _verified(conn, key_id(key))


def check_key(url: str, key: bytes, today: date) -> int:
    """The index's current key epoch, after checking ``key`` is its key; the first use of
    an index records the key as epoch 1. Raises KeyMismatch otherwise."""
    wanted = key_id(key)
    try:
        with engine_for(url).begin() as conn:
            epoch = _verified(conn, wanted)
            if epoch is None:
                conn.execute(insert(KeyEpoch).values(epoch=1, key_id=wanted, since=today))
                return 1
            return epoch
    except IntegrityError:
        # Two first files at once (intake fans out): the other recorded epoch 1 first. Its
        # key must be ours too; read it again rather than fail the file.
        with engine_for(url).connect() as conn:
            again = _verified(conn, wanted)
        if again is None:  # pragma: no cover - the row that collided cannot vanish
            raise
        return again


def _verified(conn: Any, wanted: str) -> int | None:
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
