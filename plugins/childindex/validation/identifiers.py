"""Check digits of the two national identifiers organisations send: NHS number and UPN.

Scalar helpers take and return plain Python values; the vectorised helpers take any
array-like of strings (numpy, pyarrow, pandas, list) and return a numpy bool array, with
nulls counting as invalid. The vectorised versions never loop over rows in Python.

NHS number
    10 digits. The check digit (10th) is ``11 - (sum of digits 1..9 weighted 10..2) mod 11``;
    a result of 11 becomes 0 and a result of 10 means the 9-digit stem is never issued.

UPN (DfE unique pupil number)
    13 characters: a check letter, then a 3-digit local authority number, a 4-digit
    establishment number, a 2-digit year and a 3-digit serial. The check letter is
    ``sum(value(char) * position for positions 2..13) mod 23`` looked up in
    ``ABCDEFGHJKLMNPQRTUVWXYZ`` (0=A ... 22=Z; I, O and S are never used). A temporary UPN
    ends in a letter instead of the last serial digit; that letter takes its index in the
    same table as its value. Temporary UPNs are only accepted when asked for.

Synthetic data
    Synthetic NHS numbers always come from the ``999`` test range (:data:`NHS_TEST_PREFIX`),
    which is never issued to a real person. It holds only ~909,000 valid numbers
    (:data:`NHS_TEST_RANGE_CAPACITY`: the 10**6 stems 999000000..999999999 less the ~1/11
    whose check digit would be 10).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NHS_TEST_PREFIX = "999"
NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)  # 10, 9, ..., 2

UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
UPN_WEIGHTS = np.arange(2, 14, dtype=np.int64)  # positions 2..13

_NHS_RE = re.compile(r"[0-9]{10}")
_UPN_RE = re.compile(rf"[{UPN_CHECK_LETTERS}][0-9]{{12}}")
_UPN_TEMP_RE = re.compile(rf"[{UPN_CHECK_LETTERS}][0-9]{{11}}[{UPN_CHECK_LETTERS}]")

# Value of each byte in a UPN body: digits 0-9, check-table letters their index, others -1.
_UPN_VALUE = np.full(256, -1, dtype=np.int64)
_UPN_VALUE[ord("0") : ord("9") + 1] = np.arange(10)
for _i, _ch in enumerate(UPN_CHECK_LETTERS):
    _UPN_VALUE[ord(_ch)] = _i
_UPN_LETTER_BYTES = np.frombuffer(UPN_CHECK_LETTERS.encode("ascii"), dtype=np.uint8)


# --------------------------------------------------------------------------- NHS number


def nhs_check_digit(first9: str) -> int | None:
    """Check digit for a 9-digit NHS number stem; None when the stem is never issued.

    Raises ValueError when ``first9`` is not exactly nine ASCII digits.
    """
    if not isinstance(first9, str) or not re.fullmatch(r"[0-9]{9}", first9):
        raise ValueError(f"an NHS number stem is 9 digits, got {first9!r}")
    total = sum(int(d) * w for d, w in zip(first9, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(s: Any) -> bool:
    """True when ``s`` is exactly 10 digits with a correct modulus 11 check digit."""
    if not isinstance(s, str) or not _NHS_RE.fullmatch(s):
        return False
    return nhs_check_digit(s[:9]) == int(s[9])


def nhs_check_digits(first9: Any) -> np.ndarray:
    """Vectorised check digits for integer stems (0..999999999): int8 array, -1 = never issued."""
    stems = np.asarray(first9, dtype=np.int64)
    total = np.zeros(stems.shape, dtype=np.int64)
    for place, weight in enumerate(range(2, 11)):  # nine digit positions, least significant first
        total += (stems // 10**place) % 10 * weight
    check = 11 - total % 11
    check = np.where(check == 11, 0, check)
    return np.where(check == 10, -1, check).astype(np.int8)


def valid_nhs_numbers(values: Any) -> np.ndarray:
    """Vectorised :func:`is_valid_nhs_number`: numpy bool array, nulls are False."""
    arr = _as_string_array(values)
    shaped = _matches(arr, r"^[0-9]{10}$")
    codes = _fixed_width_bytes(pc.if_else(shaped, arr, "0" * 10), 10).astype(np.int64) - 48
    check = 11 - (codes[:, :9] @ NHS_WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    return shaped & (check == codes[:, 9])


# --------------------------------------------------------------------------- UPN


def upn_check_letter(last12: str) -> str:
    """Check letter for the 12 characters after it (12 digits, or 11 digits + a letter)."""
    if not isinstance(last12, str) or not (
        re.fullmatch(r"[0-9]{12}", last12) or re.fullmatch(rf"[0-9]{{11}}[{UPN_CHECK_LETTERS}]", last12)
    ):
        raise ValueError(f"a UPN body is 12 digits (or 11 digits and a letter), got {last12!r}")
    total = sum(int(_UPN_VALUE[ord(ch)]) * pos for pos, ch in enumerate(last12, start=2))
    return UPN_CHECK_LETTERS[total % 23]


def is_valid_upn(s: Any, *, allow_temporary: bool = False) -> bool:
    """True when ``s`` is a 13-character UPN whose first letter checks (uppercase only)."""
    if not isinstance(s, str):
        return False
    if not (_UPN_RE.fullmatch(s) or (allow_temporary and _UPN_TEMP_RE.fullmatch(s))):
        return False
    return upn_check_letter(s[1:]) == s[0]


def upn_check_indices(body12: Any) -> np.ndarray:
    """Vectorised check-letter index (0..22) for integer 12-digit UPN bodies."""
    body = np.asarray(body12, dtype=np.int64)
    total = np.zeros(body.shape, dtype=np.int64)
    for place in range(12):  # position 13 is the least significant digit
        total += (body // 10**place) % 10 * (13 - place)
    return (total % 23).astype(np.int8)


def valid_upns(values: Any, *, allow_temporary: bool = False) -> np.ndarray:
    """Vectorised :func:`is_valid_upn`: numpy bool array, nulls are False."""
    arr = _as_string_array(values)
    letters = UPN_CHECK_LETTERS
    shaped = _matches(arr, rf"^[{letters}][0-9]{{12}}$")
    if allow_temporary:
        shaped |= _matches(arr, rf"^[{letters}][0-9]{{11}}[{letters}]$")
    codes = _fixed_width_bytes(pc.if_else(shaped, arr, "A" + "0" * 12), 13)
    values12 = _UPN_VALUE[codes[:, 1:]]
    check = (values12 @ UPN_WEIGHTS) % 23
    return shaped & (_UPN_LETTER_BYTES[check] == codes[:, 0])


# --------------------------------------------------------------------------- helpers


def _as_string_array(values: Any) -> pa.Array:
    """Any array-like of strings as one pyarrow string array (non-strings become null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        arr = values
    else:
        data = np.asarray(values, dtype=object) if not hasattr(values, "dtype") else values
        try:
            arr = pa.array(data, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed types: keep real strings, the rest is null (and so invalid).
            obj = np.asarray(data, dtype=object)
            is_str = np.frompyfunc(lambda v: isinstance(v, str), 1, 1)(obj).astype(bool)
            arr = pa.array(np.where(is_str, obj, np.array(None, dtype=object)), type=pa.string())
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    if not pa.types.is_string(arr.type):
        return pa.nulls(len(arr), pa.string())
    return arr


def _matches(arr: pa.Array, pattern: str) -> np.ndarray:
    hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    return hit.to_numpy(zero_copy_only=False).astype(bool)


def _fixed_width_bytes(arr: pa.Array, width: int) -> np.ndarray:
    """(n, width) uint8 view of a string array whose values are all ``width`` ASCII bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    if int(offsets[-1]) - start != n * width:
        raise AssertionError("values are not all of the expected width")
    return data[start : start + n * width].reshape(n, width)
