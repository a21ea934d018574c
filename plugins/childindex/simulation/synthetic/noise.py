"""Noise applied to sector records: rates, and the vectorised edits that apply them.

Every noise decision is a counter-based draw keyed on (seed, sector, child) (or on the
household for household-level noise), so a child's record carries the same noise every
time the sector re-sends it, until a nightly correction removes a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NoiseConfig.{f.name} must be within [0, 1], got {value}")

    @classmethod
    def none(cls) -> NoiseConfig:
        """No noise at all and no twins: every record equals the true identity."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

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
    width = vals.dtype.itemsize // 4 + 1
    m = np.zeros((n, width), dtype=np.uint32)
    m[:, : width - 1] = vals.view(np.uint32).reshape(n, width - 1)
    length = (m != 0).sum(axis=1)
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
