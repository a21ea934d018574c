"""Counter-based randomness: every random draw is a hash of (seed, stream, key).

The generator never keeps a sequential random state. A draw for child 1234 in stream
"typo/health" is ``uniform(seed, "typo/health", 1234)`` wherever and whenever it is made,
so chunked writing, re-derived nightly state and re-sent delta rows all see exactly the
same value, and the output is a pure function of the arguments. The hash is the
SplitMix64 finaliser over ``key * golden + stream_constant``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = float(2**53)


@lru_cache(maxsize=4096)
def stream_constant(seed: int, stream: str) -> np.uint64:
    digest = hashlib.blake2b(f"{seed}/{stream}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def hash64(seed: int, stream: str, keys) -> np.ndarray:
    """uint64 hash of each key (int array-like) in a named stream."""
    x = np.asarray(keys).astype(np.uint64, copy=True)
    x *= _GOLDEN
    x += stream_constant(seed, stream)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def uniform(seed: int, stream: str, keys) -> np.ndarray:
    """Float64 in [0, 1) for each key."""
    return (hash64(seed, stream, keys) >> np.uint64(11)).astype(np.float64) / _TWO53


def integers(seed: int, stream: str, keys, high) -> np.ndarray:
    """Int64 in [0, high) for each key (``high`` a scalar or an array broadcastable to keys)."""
    out = np.floor(uniform(seed, stream, keys) * high).astype(np.int64)
    return np.minimum(out, np.asarray(high, dtype=np.int64) - 1)


def pair_keys(a, b) -> np.ndarray:
    """One uint64 key from two small non-negative ints (a < 2**47, b < 2**16)."""
    return (np.asarray(a).astype(np.uint64) << np.uint64(16)) | np.asarray(b).astype(np.uint64)


def select(eligible: np.ndarray, u: np.ndarray, rate: float, minimum: int = 1) -> np.ndarray:
    """Mask of eligible items with ``u < rate``; when that is empty, the lowest-``u`` item(s).

    Ties at the minimum are all selected, so keys shared by a household (twins) move
    together. With ``minimum=0`` the fallback is skipped.
    """
    chosen = eligible & (u < rate)
    if minimum and not chosen.any() and eligible.any():
        lowest = u[eligible].min()
        chosen = eligible & (u == lowest)
    return chosen
