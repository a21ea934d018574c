"""Noise applied to sector records: rates, profiles, and the vectorised edits that apply them.

Every noise decision is a counter-based draw keyed on (seed, sector, child) (or on the
household for household-level noise), so a child's record carries the same noise every
time the sector re-sends it, until a nightly correction removes a typo.

Two profiles (:data:`PROFILES`, :meth:`NoiseConfig.profile`): ``default``, the world the
bundled linkage model was trained on, and ``harsh`` (:meth:`NoiseConfig.harsh`), more and
other kinds of noise (phonetic and OCR misspellings, transposed names, blank required
fields, date of birth and postcode typos), so linkage is also tested on records unlike the
ones it was built on. The kinds only ``harsh`` uses default to 0, and each is applied only
when its rate is above 0: the default profile's output does not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from childindex.simulation.rand import uniform

PROFILES = ("default", "harsh")


@dataclass(frozen=True)
class NoiseConfig:
    """Noise rates per sector record (see :mod:`childindex.simulation.synthetic` for the model)."""

    typo: float = 0.02  # one substitution, deletion or transposition in given or family name
    nickname: float = 0.03  # of all records, among names with a common short/long form
    surname_change: float = 0.015  # hyphenated ("Smith-Jones") or another surname
    dob_swap: float = 0.005  # of records whose date of birth has day <= 12 and day != month
    missing_nhs_health: float = 0.03
    missing_nhs_social_care: float = 0.30
    missing_upn_education: float = 0.02
    missing_upn_social_care: float = 0.50
    # A second registration of the child, made with its record (half without the NHS number).
    duplicate_health: float = 0.003
    duplicate_education: float = 0.001
    duplicate_social_care: float = 0.003
    house_move: float = 0.03  # of children in 2+ sectors: one sector holds an old address
    twins: float = 0.015  # of children, in twin pairs (a population property)
    siblings: float = 0.1  # of child pairs, sharing a household (surname, address) with the next pair
    # Kinds of noise only the harsh profile uses (0: not applied, no draw made).
    typo_second: float = 0.0  # of names with a typo: a second edit in the same name
    phonetic: float = 0.0  # one name respelled as it sounds (PHONETIC_RULES)
    ocr: float = 0.0  # one name misread by a scanner (OCR_RULES: rn/m, cl/d, ...)
    transposed: float = 0.0  # given and family names swapped between their fields
    missing_given: float = 0.0  # given name blank (the contract decides whether intake keeps the row)
    missing_dob: float = 0.0  # date of birth blank
    missing_postcode: float = 0.0  # postcode blank
    missing_sex: float = 0.0  # sex blank
    surname_change_record: float = 0.0  # surname changed in this record only, not the household's
    dob_typo: float = 0.0  # one digit of the day, month or year changed (still a valid, past date)
    postcode_swap: float = 0.0  # unit letters swapped or a digit changed (10%: shape broken)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NoiseConfig.{f.name} must be within [0, 1], got {value}")

    @classmethod
    def none(cls) -> NoiseConfig:
        """No noise at all and no twins: every record equals the true identity."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def harsh(cls) -> NoiseConfig:
        """More, and other kinds of, noise than the default (table in
        :mod:`childindex.simulation.synthetic`): what a linker meets beyond the world it was
        built on, while still finding nearly every true pair."""
        return cls(
            typo=0.08,
            typo_second=0.10,
            nickname=0.05,
            surname_change=0.04,
            surname_change_record=0.01,
            dob_swap=0.02,
            duplicate_health=0.01,
            duplicate_education=0.01,
            duplicate_social_care=0.01,
            phonetic=0.05,
            ocr=0.02,
            transposed=0.015,
            missing_given=0.01,
            missing_dob=0.01,
            missing_postcode=0.01,
            missing_sex=0.01,
            dob_typo=0.03,
            postcode_swap=0.03,
        )

    @classmethod
    def profile(cls, name: str) -> NoiseConfig:
        """The named noise profile: one of :data:`PROFILES`."""
        if name == "default":
            return cls()
        if name == "harsh":
            return cls.harsh()
        raise ValueError(f"unknown noise profile {name!r}: choose one of {', '.join(PROFILES)}")

    def missing_nhs(self, sector: str) -> float:
        return {"health": self.missing_nhs_health, "social_care": self.missing_nhs_social_care}.get(sector, 0.0)

    def missing_upn(self, sector: str) -> float:
        return {"education": self.missing_upn_education, "social_care": self.missing_upn_social_care}.get(sector, 0.0)

    def duplicate(self, sector: str) -> float:
        return {"health": self.duplicate_health, "education": self.duplicate_education,
                "social_care": self.duplicate_social_care}[sector]  # fmt: skip


def typo_strings(values: np.ndarray, u_kind: np.ndarray, u_pos: np.ndarray, u_char: np.ndarray) -> np.ndarray:
    """One typo in each string, chosen by three uniforms per value; fully vectorised.

    The strings become a (n, width) matrix of code points; a substitution writes a
    different lowercase letter, a deletion shifts the tail left, a transposition swaps two
    neighbours (a substitution instead when they are equal). The first letter is kept, so
    initials survive as they mostly do in real typing errors. Strings shorter than two
    characters are left alone.
    """
    vals = np.asarray(values, dtype=str)
    n = len(vals)
    if n == 0:
        return vals
    m, length = code_points(vals)
    width = m.shape[1]
    kind = np.minimum((u_kind * 3).astype(np.int64), 2)  # 0 substitution, 1 deletion, 2 transposition
    kind = np.where((kind == 2) & (length < 3), 0, kind)
    span = np.maximum(np.where(kind == 2, length - 2, length - 1), 1)
    pos = 1 + np.minimum((u_pos * span).astype(np.int64), span - 1)
    rows = np.arange(n)
    if (kind == 2).any():
        nxt = m[rows, np.minimum(pos + 1, width - 1)]
        kind = np.where((kind == 2) & (m[rows, pos] == nxt), 0, kind)
    kind = np.where(length < 2, -1, kind)

    sub = kind == 0
    cur = m[rows[sub], pos[sub]].astype(np.int64)
    shift = 1 + (u_char[sub] * 25).astype(np.int64)
    lower = (cur >= 97) & (cur <= 122)
    m[rows[sub], pos[sub]] = np.where(lower, 97 + (cur - 97 + shift) % 26, 97 + shift % 26)

    tra = kind == 2
    r, p = rows[tra], pos[tra]
    left = m[r, p].copy()
    m[r, p] = m[r, p + 1]
    m[r, p + 1] = left

    dele = kind == 1
    if dele.any():
        block = m[dele]
        idx = np.arange(width)[None, :]
        src = np.minimum(idx + (idx >= pos[dele][:, None]), width - 1)
        block = np.take_along_axis(block, src, axis=1)
        block[:, -1] = 0
        m[dele] = block
    return np.ascontiguousarray(m).view(f"<U{width}").ravel()


def swap_day_month(days: np.ndarray, mask: np.ndarray, latest: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Swap day and month of epoch-day dates where ``mask`` and the swap is a real change.

    Returns (new days, applied mask); a swap applies only when day <= 12 and day != month,
    and (given ``latest``) when the swapped date is not after ``latest``: nobody types a
    date of birth in the future.
    """
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    year_start = d.astype("datetime64[Y]")
    day = (d - month_start).astype(np.int64) + 1
    month = (month_start - year_start.astype("datetime64[M]")).astype(np.int64) + 1
    applied = np.asarray(mask, dtype=bool) & (day <= 12) & (day != month)
    swapped = year_start.astype("datetime64[M]") + (day - 1).astype("timedelta64[M]")
    swapped = swapped.astype("datetime64[D]") + (month - 1).astype("timedelta64[D]")
    swapped = swapped.astype(np.int64)
    if latest is not None:
        applied &= swapped <= latest
    out = np.where(applied, swapped, np.asarray(days, dtype=np.int64))
    return out.astype(np.int32), applied


def swappable(days: np.ndarray) -> np.ndarray:
    """Dates whose day and month can be swapped into a different valid date."""
    return swap_day_month(days, np.ones(len(days), dtype=bool))[1]


# Phonetic respellings (RE2 patterns, first match replaced): one rule, among those matching a
# name, rewrites it. Interior rules match lowercase letters only, so an initial survives
# unless a rule names it (Ph/F, C/K, Kn, Wr, Chr).
PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    ("ph", "f"),
    ("^Ph", "F"),
    ("([aeiouy])f([aeiouy]|$)", r"\1ph\2"),
    ("^F([aeiloru])", r"Ph\1"),
    ("ck", "k"),
    ("ck", "c"),
    ("([aeiou])[ck]$", r"\1ck"),
    ("^C([aoulr])", r"K\1"),
    ("^K([aoulr])", r"C\1"),
    ("c([aou])", r"k\1"),
    ("k([aou])", r"c\1"),
    ("y$", "ie"),
    ("y$", "i"),
    ("ie$", "y"),
    ("ey$", "y"),
    ("ey$", "ie"),
    ("i$", "y"),
    ("([bcdfgklmnprstvz])y([bcdfgklmnprstvz])", r"\1i\2"),
    ("([bcdfgklmnprstvz])i([bcdfgklmnprstvz])", r"\1y\2"),
    ("([aeiouy])([lnrtmpd])([aeiouy])", r"\1\2\2\3"),
    ("ll", "l"),
    ("nn", "n"),
    ("tt", "t"),
    ("rr", "r"),
    ("ss", "s"),
    ("mm", "m"),
    ("pp", "p"),
    ("dd", "d"),
    ("ff", "f"),
    ("bb", "b"),
    ("gg", "g"),
    ("cc", "c"),
    ("zz", "z"),
    ("gh", ""),
    ("([BDGKRTWbdgkrtw])h", r"\1"),
    ("^Chr", "Cr"),
    ("^Kn", "N"),
    ("^Wr", "R"),
    ("son$", "sen"),
    ("sen$", "son"),
    ("er$", "a"),
    ("a$", "er"),
    ("ei", "ie"),
    ("ie", "ei"),
    ("z", "s"),
    ("([aeiouy])s([aeiouy])", r"\1z\2"),
    ("x", "ks"),
    ("([lnr])k$", r"\1c"),
    ("([lnr])c$", r"\1k"),
    ("([aeiou])h$", r"\1"),
    ("([aeiou])h([^aeiouy])", r"\1\2"),
    ("([aeiou])l$", r"\1ll"),
    ("([^aeiouy])e$", r"\1"),
    ("ich", "itch"),
    ("itch", "ich"),
    ("au", "aw"),
    ("aw", "au"),
    ("an$", "en"),
    ("en$", "an"),
    ("or$", "er"),
    ("([aeiou])v([aeiou])", r"\1ph\2"),
    ("([aeiou])ph([aeiou])", r"\1v\2"),
    ("([lnr])d$", r"\1t"),
    ("kes$", "ks"),
    ("ks$", "kes"),
    ("ai", "ay"),
    ("ay", "ai"),
    ("ee", "ea"),
    ("ea", "ee"),
)
# Scanner misreadings of lowercase letters (a name stays alphabetic, its initial unchanged).
OCR_RULES: tuple[tuple[str, str], ...] = (
    ("rn", "m"),
    ("m", "rn"),
    ("cl", "d"),
    ("d", "cl"),
    ("vv", "w"),
    ("w", "vv"),
    ("li", "h"),
    ("h", "li"),
    ("ii", "u"),
    ("u", "ii"),
    ("e", "c"),
    ("c", "e"),
    ("o", "a"),
    ("a", "o"),
    ("ri", "n"),
    ("n", "ri"),
    ("b", "h"),
    ("l", "i"),
    ("i", "l"),
    ("g", "q"),
    ("u", "v"),
    ("v", "u"),
)


def rewrite_strings(values: pa.Array, rules: tuple[tuple[str, str], ...], u: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Rewrite each value with one of the ``rules`` (pattern, replacement) matching it.

    Which matching rule is drawn by ``u`` (one uniform per value): the k-th matching rule,
    k = floor(u * matches). Its first match is replaced. Returns (values, rewritten mask);
    a value no rule matches is kept. Vectorised over values, one pass per rule.
    """
    n = len(values)
    if n == 0:
        return values, np.zeros(0, dtype=bool)
    hits = np.stack(
        [pc.fill_null(pc.match_substring_regex(values, pattern), False).to_numpy(zero_copy_only=False)
         for pattern, _ in rules],
        axis=1,
    )  # fmt: skip
    count = hits.sum(axis=1)
    k = np.minimum((np.asarray(u) * count).astype(np.int64), np.maximum(count - 1, 0))
    chosen = np.argmax(np.cumsum(hits, axis=1) > k[:, None], axis=1)
    applied = count > 0
    index = np.arange(n, dtype=np.int64)
    pieces, size = [values], n
    for r, (pattern, replacement) in enumerate(rules):
        rows = np.flatnonzero(applied & (chosen == r))
        if len(rows):
            edited = pc.replace_substring_regex(values.take(pa.array(rows)), pattern, replacement, max_replacements=1)
            pieces.append(edited)
            index[rows] = size + np.arange(len(rows))
            size += len(rows)
    if size == n:
        return values, applied
    return pa.concat_arrays(pieces).take(pa.array(index)), applied


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    years = d.astype("datetime64[Y]")
    year = years.astype(np.int64) + 1970
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - months).astype(np.int64) + 1
    return year, month, day


def _epoch_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(epoch days, valid) of (year, month, day) arrays; invalid where the month or day is out of range."""
    ok_month = (month >= 1) & (month <= 12)
    start = ((year - 1970) * 12 + np.where(ok_month, month, 1) - 1).astype("datetime64[M]")
    days_in = (start + 1).astype("datetime64[D]") - start.astype("datetime64[D]")
    valid = ok_month & (day >= 1) & (day <= days_in.astype(np.int64))
    return start.astype("datetime64[D]").astype(np.int64) + day - 1, valid


# One changed digit of a date written dd/mm/yyyy: (part: 0 year, 1 month, 2 day; place value).
_DATE_DIGITS = ((0, 1000), (0, 100), (0, 10), (0, 1), (1, 10), (1, 1), (2, 10), (2, 1))


def typo_dates(
    days: np.ndarray, mask: np.ndarray, u_part: np.ndarray, u_pick: np.ndarray, earliest: int, latest: int
) -> tuple[np.ndarray, np.ndarray]:
    """One digit of the day, month or year of each masked date changed; fully vectorised.

    The part is drawn by ``u_part`` (a third each); among the valid dates a one-digit change
    of that part gives (a real date within [``earliest``, ``latest``]) one is drawn by
    ``u_pick``; when the part has none, among those of any part. Returns (days, applied).
    """
    days = np.asarray(days, dtype=np.int64)
    mask = np.asarray(mask, dtype=bool)
    out = days.copy()
    applied = np.zeros(len(days), dtype=bool)
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return out.astype(np.int32), applied
    ymd = _ymd(days[rows])
    parts, cands = [], []
    for part, place in _DATE_DIGITS:
        value = ymd[part]
        digit = (value // place) % 10
        for offset in range(1, 10):
            changed = value + (((digit + offset) % 10) - digit) * place
            args = [ymd[0], ymd[1], ymd[2]]
            args[part] = changed
            day, valid = _epoch_days(*args)
            cands.append(np.where(valid & (day >= earliest) & (day <= latest), day, -(2**40)))
            parts.append(part)
    cand = np.stack(cands, axis=1)  # (rows, 72): -2**40 where not a valid date
    valid = cand > -(2**40)
    want = np.minimum((np.asarray(u_part)[rows] * 3).astype(np.int64), 2)  # 0 year, 1 month, 2 day
    eligible = valid & (np.array(parts)[None, :] == want[:, None])
    eligible = np.where(eligible.any(axis=1)[:, None], eligible, valid)
    count = eligible.sum(axis=1)
    k = np.minimum((np.asarray(u_pick)[rows] * count).astype(np.int64), np.maximum(count - 1, 0))
    chosen = np.argmax(np.cumsum(eligible, axis=1) > k[:, None], axis=1)
    ok = count > 0
    out[rows[ok]] = cand[np.flatnonzero(ok), chosen[ok]]
    applied[rows[ok]] = True
    return out.astype(np.int32), applied


POSTCODE_SWAP_KINDS = (0.45, 0.25, 0.20, 0.10)  # unit letters swapped, sector digit, district digit, shape broken


def swap_postcodes(values: np.ndarray, u_kind: np.ndarray, u_digit: np.ndarray) -> np.ndarray:
    """One slip in each postcode "OUT DLL"; fully vectorised like :func:`typo_strings`.

    Kinds (:data:`POSTCODE_SWAP_KINDS`): the two unit letters swapped (the sector digit
    changed instead when they are equal), the sector digit changed, the district's last
    digit changed (the sector digit when the outward code ends in a letter), all keeping
    the UK postcode shape; or the sector digit swapped with the first unit letter, which
    breaks it. Values not of the shape "... DLL" are left alone.
    """
    vals = np.asarray(values, dtype=str)
    n = len(vals)
    if n == 0:
        return vals
    m, length = code_points(vals)
    width = m.shape[1]
    rows = np.arange(n)
    at = np.maximum(length[:, None] - np.arange(1, 6)[None, :], 0)  # last, 2nd last, ... 5th last
    last5 = m[rows[:, None], at]
    is_digit = (last5 >= 48) & (last5 <= 57)
    is_upper = (last5 >= 65) & (last5 <= 90)
    shaped = (length >= 6) & is_upper[:, 0] & is_upper[:, 1] & is_digit[:, 2] & (last5[:, 3] == 32)
    cum = np.cumsum(POSTCODE_SWAP_KINDS)
    kind = np.minimum(np.searchsorted(cum / cum[-1], u_kind, side="right"), len(cum) - 1)
    kind = np.where((kind == 0) & (last5[:, 0] == last5[:, 1]), 1, kind)
    kind = np.where((kind == 2) & ~is_digit[:, 4], 1, kind)
    kind = np.where(shaped, kind, -1)
    shift = 1 + np.minimum((np.asarray(u_digit) * 9).astype(np.int64), 8)

    def bump(r: np.ndarray, pos: np.ndarray) -> None:
        m[r, pos] = 48 + (m[r, pos].astype(np.int64) - 48 + shift[r]) % 10

    r = rows[kind == 0]
    p = length[r] - 2
    m[r, p], m[r, p + 1] = m[r, p + 1].copy(), m[r, p].copy()
    r = rows[kind == 1]
    bump(r, length[r] - 3)
    r = rows[kind == 2]
    bump(r, length[r] - 5)
    r = rows[kind == 3]
    p = length[r] - 3
    m[r, p], m[r, p + 1] = m[r, p + 1].copy(), m[r, p].copy()
    return np.ascontiguousarray(m).view(f"<U{width}").ravel()


def missing(rate: float, seed: int, stream: str, key: np.ndarray) -> np.ndarray | None:
    """Records whose field is left blank (None when the rate is 0: no draw made)."""
    if rate <= 0:
        return None
    return uniform(seed, stream, key) < rate


def blank(values: pa.Array, rate: float, seed: int, stream: str, key: np.ndarray) -> pa.Array:
    """``values`` with a share ``rate`` of them blank (null)."""
    blank = missing(rate, seed, stream, key)
    if blank is None or not blank.any():
        return values
    return pc.if_else(pa.array(blank), pa.scalar(None, pa.string()), values)


def code_points(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strings (a non-empty numpy ``<U`` array) as an (n, width) matrix of code points with
    a zero column to spare at the end (room for an edit), and each string's length.
    ``m.view(f"<U{width}")`` turns the matrix back into strings."""
    width = vals.dtype.itemsize // 4 + 1
    m = np.zeros((len(vals), width), dtype=np.uint32)
    m[:, : width - 1] = vals.view(np.uint32).reshape(len(vals), width - 1)
    return m, (m != 0).sum(axis=1)
