"""An organisation's own reference for a child: its local id, encrypted so only childindex can
read it back, the same every night, and meaningless outside that organisation.

A notice must name the child in the receiving organisation's own terms, or it cannot find the
child without guessing; the index keeps local ids only as one-way HMACs (``source_key``). So
the reference is the local id under deterministic authenticated encryption (SIV, RFC 5297's
construction, with HMAC-SHA256 for both of its parts):

- per organisation, two subkeys from the reference key K: ``k_tag = HMAC(K, "reference-tag:" + org)``
  and ``k_enc = HMAC(K, "reference-enc:" + org)``;
- ``tag = HMAC(k_tag, local_id)``, its first 16 bytes: the synthetic IV;
- ``body = utf8(local_id) XOR (HMAC(k_enc, tag:0) || HMAC(k_enc, tag:1) || ...)``;
- the reference is ``hex(tag || body)``.

Deterministic, so a rerun of a night writes the same notice and two notices about one record
carry one reference; authenticated, so a reference altered or made up is refused, not read as
another child. The tag is a keyed hash: it says nothing of the id without K. K is its own key
(not the pseudonymisation key), from configuration: a leaked pseudonymisation key does not
open references, and a leaked reference key opens only the references (local ids), never the
NHS numbers or UPNs, which are not encrypted this way at all.

:func:`reference_sql` computes references in bulk inside DuckDB (the same HMAC built on
``sha256`` as pseudonymisation); :func:`encrypt_reference` and :func:`decrypt_reference` are
the plain-Python reference implementation and the way back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from childindex.staging.pseudonymise import hmac_hex, hmac_sql, hmac_sql_of, key_params

TAG_BYTES = 16
BLOCK_BYTES = 32  # one HMAC-SHA256 output: the keystream's block
MAX_ID_BYTES = 400  # a local id is at most 100 characters (whitelist.MAX_LENGTH), 4 bytes each in UTF-8
_DOMAIN = "ref"  # the HMAC domain prefix of both parts (hmac_sql hashes "<domain>:<message>")


class ReferenceRefused(ValueError):
    """A reference that this key did not make for this organisation (altered, or another's)."""


def subkeys(key: bytes, organisation: str) -> tuple[bytes, bytes]:
    """The organisation's tag and keystream keys."""
    tag = hmac.new(key, f"reference-tag:{organisation}".encode(), hashlib.sha256).digest()
    enc = hmac.new(key, f"reference-enc:{organisation}".encode(), hashlib.sha256).digest()
    return tag, enc


def _tag(k_tag: bytes, local_id: str) -> str:
    return hmac_hex(k_tag, _DOMAIN, local_id)[: 2 * TAG_BYTES]


def _stream(enc: bytes, tag_hex: str, length: int) -> bytes:
    blocks = (length + BLOCK_BYTES - 1) // BLOCK_BYTES
    return bytes.fromhex("".join(hmac_hex(enc, _DOMAIN, f"{tag_hex}:{i}") for i in range(blocks)))[:length]


def encrypt_reference(key: bytes, organisation: str, local_id: str) -> str:
    """The reference of one local id (tests, and the definition :func:`reference_sql` follows)."""
    k_tag, k_enc = subkeys(key, organisation)
    data = local_id.encode()
    tag_hex = _tag(k_tag, local_id)
    body = bytes(a ^ b for a, b in zip(data, _stream(k_enc, tag_hex, len(data)), strict=True))
    return tag_hex + body.hex()


def decrypt_reference(key: bytes, organisation: str, reference: str) -> str:
    """The local id a reference stands for; ReferenceRefused when this key did not make it for
    this organisation. The message names no value."""
    k_tag, k_enc = subkeys(key, organisation)
    try:
        raw = bytes.fromhex(reference)
    except ValueError:
        raise ReferenceRefused("not a reference: not hexadecimal") from None
    if len(raw) <= TAG_BYTES:
        raise ReferenceRefused("not a reference: too short")
    tag_hex, body = raw[:TAG_BYTES].hex(), raw[TAG_BYTES:]
    data = bytes(a ^ b for a, b in zip(body, _stream(k_enc, tag_hex, len(body)), strict=True))
    try:
        local_id = data.decode()
    except UnicodeDecodeError:
        raise ReferenceRefused("the reference does not check out for this organisation") from None
    if not hmac.compare_digest(_tag(k_tag, local_id), tag_hex):
        raise ReferenceRefused("the reference does not check out for this organisation")
    return local_id


def reference_params(key: bytes, organisation: str) -> dict[str, object]:
    """Bound parameters of :func:`reference_sql` (the organisation's subkeys as HMAC pads)."""
    k_tag, k_enc = subkeys(key, organisation)
    tag, enc = key_params(k_tag), key_params(k_enc)
    return {
        "ref_ipad_tag": tag["ipad"],
        "ref_opad_tag": tag["opad"],
        "ref_ipad_enc": enc["ipad"],
        "ref_opad_enc": enc["opad"],
        "ref_domain": _DOMAIN,
    }


def reference_sql(expr: str) -> str:
    """SQL for the reference of a VARCHAR local id ``expr`` (NULL stays NULL), with
    :func:`reference_params` bound."""
    tag = f"left({hmac_sql(expr, 'ref_domain', 'ref_ipad_tag', 'ref_opad_tag')}, {2 * TAG_BYTES})"

    def block(i: int) -> str:
        return hmac_sql(f"{tag} || ':{i}'", "ref_domain", "ref_ipad_enc", "ref_opad_enc")

    size = f"octet_length(encode({expr}))"
    body = f"hex(CAST(xor(CAST(encode({expr}) AS BIT), {_keystream(block, size)}) AS BLOB))"
    return f"CASE WHEN {expr} IS NOT NULL THEN lower({tag} || {body}) END"


def key_rows(key: bytes, organisations: list[str]) -> dict[str, list]:
    """Columns of a key table for :func:`local_id_sql` (one row per organisation: its subkeys
    as HMAC pads), so one query can read many organisations' references."""
    rows: dict[str, list] = {"organisation": [], "ipad_tag": [], "opad_tag": [], "ipad_enc": [], "opad_enc": []}
    for code in organisations:
        params = reference_params(key, code)
        rows["organisation"].append(code)
        for name in ("ipad_tag", "opad_tag", "ipad_enc", "opad_enc"):
            rows[name].append(params[f"ref_{name}"])
    return rows


def _keystream(block: Callable[[int], str], size: str) -> str:
    """The keystream of ``size`` bytes as a BIT string, from its HMAC blocks ``block(i)``.
    Blocks past the first are computed only for ids longer than the blocks before them (CASE
    evaluates a branch for the rows reaching it)."""
    stream = " || ".join(
        block(0) if i == 0 else f"CASE WHEN {size} > {i * BLOCK_BYTES} THEN {block(i)} ELSE '' END"
        for i in range(MAX_ID_BYTES // BLOCK_BYTES + 1)
    )
    return f"CAST(unhex(left({stream}, 2 * {size})) AS BIT)"


def _hmac_cols(expr: str, ipad: str, opad: str) -> str:
    """:func:`hmac_sql` with the pads taken from a key table's columns."""
    return hmac_sql_of(expr, f"'{_DOMAIN}'", ipad, opad)


def local_id_sql(ref: str, keys: str) -> str:
    """SQL for the local id a reference ``ref`` stands for, with the organisation's row of a
    key table (:func:`key_rows`) aliased ``keys``; NULL when the reference does not check out
    (altered, or another organisation's), as :func:`decrypt_reference` refuses it."""
    tag = f"left({ref}, {2 * TAG_BYTES})"
    body = f"try(unhex(substr({ref}, {2 * TAG_BYTES + 1})))"
    size = f"octet_length({body})"

    def block(i: int) -> str:
        return _hmac_cols(f"{tag} || ':{i}'", f"{keys}.ipad_enc", f"{keys}.opad_enc")

    plain = f"try(decode(CAST(xor(CAST({body} AS BIT), {_keystream(block, size)}) AS BLOB)))"
    check = f"left({_hmac_cols(plain, f'{keys}.ipad_tag', f'{keys}.opad_tag')}, {2 * TAG_BYTES})"
    return f"CASE WHEN {size} > 0 AND {check} = lower({tag}) THEN {plain} END"
