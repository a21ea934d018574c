"""Key files: a new random key, reading one only its owner may read, and whether a key is
strong enough to be a secret. Messages name where a key came from, never the key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from childindex.errors import SettingsError

MIN_KEY_BYTES = 32
# A key's content as the empirical entropy of its bytes (bits per byte times its length): 40
# spaces or one repeated letter is 0 bits, a random 64-character hex key about 256.
MIN_KEY_BITS = 64


def create_key_file(path: Path) -> Path:
    """Write a new random 64-character key to ``path`` with mode 0600 (never overwrites)."""
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


def read_key_file(path: Path, origin: str) -> bytes:
    """A key from a file that only its owner can read; errors name ``origin``."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"{origin}: cannot read the key file: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"{origin}: the key file is readable by others; run chmod 600 on it")
    key = path.read_bytes().strip()
    check_key_strength(key, origin)
    return key


def check_key_strength(key: bytes, origin: str) -> None:
    """SettingsError for a key too short or too uniform to be a secret (the message names the
    setting, never the key)."""
    import math
    from collections import Counter

    if len(key.strip()) < MIN_KEY_BYTES:
        raise SettingsError(f"{origin}: the key must be at least {MIN_KEY_BYTES} bytes, not counting spaces")
    bits = -sum(n * math.log2(n / len(key)) for n in Counter(key).values())
    if bits < MIN_KEY_BITS:
        raise SettingsError(
            f"{origin}: the key is too uniform to be a secret (its bytes hold about {bits:.0f} bits, "
            f"at least {MIN_KEY_BITS} are needed); 'childindex init-key FILE' creates a random one"
        )
