"""NHS number and UPN check digits: known values worked by hand, vectorised == scalar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from childindex.validation.identifiers import (
    NHS_TEST_PREFIX,
    UPN_CHECK_LETTERS,
    is_valid_nhs_number,
    is_valid_upn,
    nhs_check_digit,
    nhs_check_digits,
    upn_check_indices,
    upn_check_letter,
    valid_nhs_numbers,
    valid_upns,
)

# --------------------------------------------------------------------------- NHS number


@pytest.mark.parametrize(
    ("stem", "check"),
    [
        # 9*10 + 4*9 + 3*8 + 4*7 + 7*6 + 6*5 + 5*4 + 9*3 + 1*2 = 299; 299 mod 11 = 2; 11-2 = 9
        ("943476591", 9),
        # 9*10 + 9*9 + 9*8 = 243, + 1*2 = 245; 245 mod 11 = 3; 11-3 = 8
        ("999000001", 8),
        # 243 + 2*2 = 247; 247 mod 11 = 5; 11-5 = 6
        ("999000002", 6),
        # 243 + 5*2 = 253 = 23*11; mod 11 = 0; 11-0 = 11 -> 0
        ("999000005", 0),
        # all zeros: sum 0 -> 11 -> 0
        ("000000000", 0),
        # 243; 243 mod 11 = 1; 11-1 = 10 -> never issued
        ("999000000", None),
        # 1*10 = 10; mod 11 = 10; 11-10 = 1
        ("100000000", 1),
    ],
)
def test_nhs_check_digit_known(stem, check):
    assert nhs_check_digit(stem) == check
    assert nhs_check_digits([int(stem)])[0] == (-1 if check is None else check)


@pytest.mark.parametrize("good", ["9434765919", "9990000018", "9990000026", "9990000050", "0000000000", "1000000001"])
def test_valid_nhs_numbers(good):
    assert is_valid_nhs_number(good)
    assert valid_nhs_numbers([good])[0]


@pytest.mark.parametrize(
    "bad",
    [
        "9434765918",  # wrong check digit (9 expected)
        "9990000000",  # stem 999000000 has check 10: never issued, whatever the last digit
        "9990000001",
        "943476591",  # 9 digits
        "94347659190",  # 11 digits
        "943 476 5919",  # spaces are not accepted
        "943476591X",
        "",
        " 9434765919",
        "９４３４７６５９１９",  # full-width digits
        None,
        9434765919,
        float("nan"),
    ],
)
def test_invalid_nhs_numbers(bad):
    assert not is_valid_nhs_number(bad)
    assert not valid_nhs_numbers(pd.Series([bad], dtype=object))[0]


def test_nhs_check_digit_rejects_malformed_stem():
    for stem in ("12345678", "1234567890", "12345678x", 123456789):
        with pytest.raises(ValueError):
            nhs_check_digit(stem)


def test_test_range_prefix():
    assert NHS_TEST_PREFIX == "999"
    stems = np.arange(999_000_000, 1_000_000_000, dtype=np.int64)
    valid = (nhs_check_digits(stems) >= 0).sum()
    assert valid == 909_091  # the 999 range holds ~909k valid numbers


def _random_nhs_strings(rng, n):
    stems = rng.integers(0, 10**9, n)
    good = [f"{s:09d}{c}" for s, c in zip(stems, nhs_check_digits(stems), strict=True) if c >= 0]
    wrong = [f"{rng.integers(0, 10**10):010d}" for _ in range(n)]
    junk = ["", "abc", "12345", None, "12345678901", "123456789a", "１２３４５６７８９０"]
    values = good + wrong + junk * 5
    rng.shuffle(values)
    return values


def test_vectorised_nhs_matches_scalar():
    rng = np.random.default_rng(1)
    values = _random_nhs_strings(rng, 3000)
    expected = np.array([is_valid_nhs_number(v) for v in values])
    assert 0.3 < expected.mean() < 0.7
    for form in (
        values,
        np.array(values, dtype=object),
        pd.Series(values),
        pa.array(values, pa.string()),
        pa.chunked_array([values[:100], values[100:]]),
        pd.Series(values, dtype="string"),
    ):
        got = valid_nhs_numbers(form)
        assert got.dtype == bool and (got == expected).all()


# --------------------------------------------------------------------------- UPN


@pytest.mark.parametrize(
    ("body", "letter"),
    [
        # 8*2 + 0*3 + 1*4 + 2*5 + 0*6 + 0*7 + 0*8 + 0*9 + 5*10 + 0*11 + 0*12 + 1*13
        # = 16 + 4 + 10 + 50 + 13 = 93; 93 mod 23 = 1 -> B
        ("801200005001", "B"),
        # 2*2 + 0*3 + 7*4 + 0 + 0 + 0 + 0*8 + 1*9 + 6*10 + 0*11 + 4*12 + 9*13
        # = 4 + 28 + 9 + 60 + 48 + 117 = 266; 266 - 11*23 = 13 -> P (A..H = 0..7, J..N = 8..12)
        ("207000016049", "P"),
        # all zeros: 0 -> A
        ("000000000000", "A"),
        # 0...0 then 1 at position 13: 13 -> P; 2 at position 13: 26 mod 23 = 3 -> D
        ("000000000001", "P"),
        ("000000000002", "D"),
        # temporary: 8*2 + 1*4 + 2*5 + 5*10 + value(A)=0 * 13 = 80; 80 - 3*23 = 11 -> M
        ("80120000500A", "M"),
        # temporary: ...000 then Z (22) at position 13: 22*13 = 286; 286 - 12*23 = 10 -> L
        ("00000000000Z", "L"),
    ],
)
def test_upn_check_letter_known(body, letter):
    assert upn_check_letter(body) == letter
    if body.isdigit():
        assert UPN_CHECK_LETTERS[upn_check_indices([int(body)])[0]] == letter


def test_upn_valid_and_invalid():
    assert is_valid_upn("B801200005001")
    assert is_valid_upn("P207000016049")
    assert not is_valid_upn("A801200005001")  # wrong letter
    assert not is_valid_upn("Q207000016049")  # wrong letter (P expected)
    assert not is_valid_upn("b801200005001")  # lowercase
    assert not is_valid_upn("B80120000500")  # 12 characters
    assert not is_valid_upn("B8012000050012")  # 14 characters
    assert not is_valid_upn("B80120000500 ")
    assert not is_valid_upn(None) and not is_valid_upn(801200005001)
    # I, O and S never appear in the check table
    assert not any(is_valid_upn(c + "801200005001") for c in "IOS")
    # temporary UPNs only on request
    assert not is_valid_upn("M80120000500A")
    assert is_valid_upn("M80120000500A", allow_temporary=True)
    assert not is_valid_upn("M80120000500I", allow_temporary=True)
    assert valid_upns(["M80120000500A"], allow_temporary=True).tolist() == [True]
    assert valid_upns(["M80120000500A"]).tolist() == [False]


def test_upn_check_letter_rejects_malformed_body():
    for body in ("80120000500", "8012000050011", "80120000500I", "8O1200005001", 1):
        with pytest.raises(ValueError):
            upn_check_letter(body)


def _random_upns(rng, n):
    bodies = rng.integers(0, 10**12, n)
    letters = np.array(list(UPN_CHECK_LETTERS))
    good = [f"{letters[c]}{b:012d}" for b, c in zip(bodies, upn_check_indices(bodies), strict=True)]
    wrong = [f"{rng.choice(letters)}{rng.integers(0, 10**12):012d}" for _ in range(n)]
    temp = [f"{rng.choice(letters)}{rng.integers(0, 10**11):011d}{rng.choice(letters)}" for _ in range(n // 2)]
    junk = ["", None, "I801200005001", "b801200005001", "B80120000500", "B8012000050011", "B80120O005001"]
    values = good + wrong + temp + junk * 5
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("allow_temporary", [False, True])
def test_vectorised_upn_matches_scalar(allow_temporary):
    rng = np.random.default_rng(2)
    values = _random_upns(rng, 3000)
    expected = np.array([is_valid_upn(v, allow_temporary=allow_temporary) for v in values])
    assert expected.sum() > 2900
    for form in (values, np.array(values, dtype=object), pd.Series(values), pa.array(values, pa.string())):
        got = valid_upns(form, allow_temporary=allow_temporary)
        assert got.dtype == bool and (got == expected).all()


def test_vectorised_empty_and_all_null():
    assert valid_nhs_numbers([]).shape == (0,)
    assert valid_upns(pa.nulls(3, pa.string())).tolist() == [False] * 3
    assert valid_nhs_numbers(pa.array([None, None], pa.string())).tolist() == [False, False]
