"""The synthetic population: who exists, who each sector knows, and how that changes nightly.

Only state that the nightly evolution changes is held as whole-population arrays (a few
bytes per child: date of birth, per-sector enrolment night, sequence number, end night and
typo-corrected flag, and an address version). Everything else about a child (names, sex,
identifiers, address) is recomputed on demand for a chunk of person ids by
:func:`identity`, from counter-based draws, so memory stays small even for 11 million
children.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from math import gcd

import numpy as np

from childindex.simulation.rand import hash64, integers, select, uniform
from childindex.simulation.synthetic import names as T
from childindex.simulation.synthetic.areas import Moves, World
from childindex.simulation.synthetic.noise import NoiseConfig
from childindex.validation.identifiers import nhs_check_digits, upn_check_indices
from childindex.whitelist import SECTORS

log = logging.getLogger(__name__)

EPOCH = date(1970, 1, 1)
SCHOOL_AGE = (4, 17)  # at the first night, inclusive
MAX_DOB_OFFSET = 6570  # days before the first night: every child is aged 0-17

# Involvement at the first night.
SOCIAL_CARE_RATE = 0.04
EDUCATION_RATE = 0.96  # of school-age children
HEALTH_GAP_IF_OTHER = 0.042  # not on a health caseload, only among children another sector
#                              knows: ~3% of all children (every child is in 1-3 sectors)
CLOSED_RATE = {"health": 0.02, "education": 0.02, "social_care": 0.30}

# Nightly events (per night; each picks at least one when anything is eligible).
BIRTH_RATE = 1.5e-4  # ~600k births a year over 11M children
SOCIAL_CARE_NEW_RATE = 1.0e-4
ADMISSION_RATE = 5e-3  # of school-age children not on a school roll
# House moves: childindex.simulation.england's model (about 10% of children a year, 4% across
# an authority boundary), replayed by synthetic.areas.Moves.
LEAVE_RATE = {"health": 5e-5, "education": 2e-4, "social_care": 5e-4}
CORRECTION_RATE = 0.01  # of the typos still outstanding in a sector

# A record's registrations (a new one after each cross-authority move) share its enrolment
# sequence number: slot = min(registration, REG_SLOTS - 2); the last slot is a duplicate.
REG_SLOTS = 8
DUPLICATE_SLOT = REG_SLOTS - 1

# Local ids: an affine bijection of the sector's enrolment sequence number.
LOCAL_ID_SPACE = {"health": 10**8, "education": 10**8, "social_care": 9_000_000}
LOCAL_ID_OFFSET = {"health": 0, "education": 0, "social_care": 1_000_000}
LOCAL_ID_MULT = {"health": 61_803_399, "education": 61_803_399, "social_care": 5_562_307}  # ~0.618

# UPN: (LA, establishment 2000-7999, serial 000-999) is a bijection of a permuted index.
UPN_SPACE = len(T.LA_CODES) * 6000 * 1000
UPN_MULT = 2_147_483_647  # prime, so coprime with UPN_SPACE: the map is a bijection

assert gcd(UPN_MULT, UPN_SPACE) == 1
assert all(gcd(LOCAL_ID_MULT[a], s) == 1 for a, s in LOCAL_ID_SPACE.items())
MAX_SEQ = {a: s // REG_SLOTS for a, s in LOCAL_ID_SPACE.items()}


def epoch_day(d: date) -> int:
    return (d - EPOCH).days


def age_years(dob_days: np.ndarray, ref: date) -> np.ndarray:
    """Completed years of age at ``ref`` (negative for children born after it)."""
    d = np.asarray(dob_days, dtype=np.int64).astype("datetime64[D]")
    years = d.astype("datetime64[Y]")
    year = years.astype(np.int64) + 1970
    months = d.astype("datetime64[M]")
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - months).astype(np.int64) + 1
    not_yet = (month * 100 + day) > (ref.month * 100 + ref.day)
    return ref.year - year - not_yet


@dataclass
class Population:
    """Population state at one night (``night`` = nights after the first)."""

    seed: int
    first_night: date
    base: int
    night: int
    noise: NoiseConfig
    bounds: np.ndarray  # bounds[j] = children after night j's births (bounds[0] = base)
    dob: np.ndarray  # int32 epoch days
    school_age: np.ndarray  # bool, at the first night
    enrol: dict[str, np.ndarray] = field(default_factory=dict)  # int16 night, -1 never
    seq: dict[str, np.ndarray] = field(default_factory=dict)  # int32, -1 never
    end: dict[str, np.ndarray] = field(default_factory=dict)  # int16 -1 open, 0 earlier, j
    fixed: dict[str, np.ndarray] = field(default_factory=dict)  # typo corrected
    addr_ver: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # equal within a household
    sent: dict[str, np.ndarray] = field(default_factory=dict)  # person ids in tonight's file
    nhs_pool: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # valid 999 numbers, seed's order
    household: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # every child's household id
    world: World | None = None  # areas and organisations (None: one place)
    moves: Moves | None = None  # every household's moves, from two years before the first night

    @property
    def children(self) -> int:
        return int(self.bounds[self.night])

    @property
    def first_day(self) -> int:
        return epoch_day(self.first_night)

    @property
    def nhs_capacity(self) -> int:
        return len(self.nhs_pool)

    def cohort(self, p: np.ndarray) -> np.ndarray:
        """0 for the base population, j for children born on night j."""
        return np.searchsorted(self.bounds, p, side="right")


def births(pop: Population, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(birth id, twin flag): twins are pairs (2q, 2q+1) born in the same cohort and share
    a birth id (so a date of birth)."""
    p = np.asarray(p, dtype=np.int64)
    q = p // 2
    follower = 2 * q + 1
    twin = (uniform(pop.seed, "twin", q) < pop.noise.twins) & (follower < pop.children)
    twin &= pop.cohort(2 * q) == pop.cohort(np.minimum(follower, pop.children - 1))
    return np.where(twin & (p % 2 == 1), p - 1, p), twin


def households(pop: Population, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(household id, twin flag). A household shares a surname and an address: twins, and
    siblings: in a quad (4r .. 4r+3) of one cohort, the second pair joins the first pair's
    household, with their own dates of birth."""
    p = np.asarray(p, dtype=np.int64)
    birth, twin = births(pop, p)
    r = p // 4
    last = np.minimum(4 * r + 3, pop.children - 1)
    siblings = (uniform(pop.seed, "siblings", r) < pop.noise.siblings) & (4 * r + 3 < pop.children)
    siblings &= pop.cohort(4 * r) == pop.cohort(last)
    hh = np.where(siblings, 4 * r, birth)
    return hh, twin


def _birth_counts(base: int, seed: int, nights: int) -> np.ndarray:
    j = np.arange(1, nights + 1)
    scale = 0.75 + 0.5 * uniform(seed, "births", j)
    return np.maximum(1, np.rint(base * BIRTH_RATE * scale)).astype(np.int64)


def _nhs_pool(seed: int) -> np.ndarray:
    stems = np.arange(999_000_000, 1_000_000_000, dtype=np.int64)
    check = nhs_check_digits(stems)
    numbers = stems[check >= 0] * 10 + check[check >= 0]
    return numbers[np.argsort(hash64(seed, "nhs", numbers), kind="stable")]


def build_population(
    children: int,
    *,
    seed: int,
    first_night: date,
    night_number: int = 0,
    noise: NoiseConfig | None = None,
    world: World | None = None,
) -> Population:
    """The population at ``night_number``: the base evolved through nights 1..night_number,
    living in ``world``'s areas (one place when None)."""
    if children < 1:
        raise ValueError("children must be at least 1")
    if night_number < 0:
        raise ValueError("night_number must be >= 0")
    noise = noise if noise is not None else NoiseConfig()
    bounds = np.concatenate([[children], children + np.cumsum(_birth_counts(children, seed, night_number))]).astype(
        np.int64
    )
    total = int(bounds[-1])
    pop = Population(
        seed=seed,
        first_night=first_night,
        base=children,
        night=night_number,
        noise=noise,
        bounds=bounds,
        dob=np.empty(total, dtype=np.int32),
        school_age=np.zeros(total, dtype=bool),
    )
    pop.nhs_pool = _nhs_pool(seed)
    _base_dates(pop)
    _base_involvement(pop)
    pop.world = world
    pop.household = np.empty(total, dtype=np.int64)
    for start in range(0, total, 2_000_000):  # bounded temporaries for 11M children
        p = np.arange(start, min(total, start + 2_000_000), dtype=np.int64)
        pop.household[p] = households(pop, p)[0]
    pop.moves = Moves.build(seed, np.unique(pop.household), night_number, world)
    pop.addr_ver = pop.moves.moves_by(pop.household, 0).astype(np.int16)
    pop.sent = {a: np.flatnonzero(pop.enrol[a][:children] >= 0) for a in SECTORS}
    for j in range(1, night_number + 1):
        _evolve(pop, j)
    return pop


def _base_dates(pop: Population) -> None:
    total = len(pop.dob)
    for start in range(0, total, 2_000_000):  # bounded temporaries for 11M children
        p = np.arange(start, min(total, start + 2_000_000), dtype=np.int64)
        birth, _ = births(pop, p)
        cohort = pop.cohort(p)
        base_dob = pop.first_day - 1 - integers(pop.seed, "dob", birth, MAX_DOB_OFFSET)
        birth_dob = pop.first_day + cohort - 1 - integers(pop.seed, "birth_dob", birth, 10)
        pop.dob[p] = np.where(cohort == 0, base_dob, birth_dob)
        age = age_years(pop.dob[p], pop.first_night)
        pop.school_age[p] = (age >= SCHOOL_AGE[0]) & (age <= SCHOOL_AGE[1])


def _base_involvement(pop: Population) -> None:
    total, base, seed = len(pop.dob), pop.base, pop.seed
    p = np.arange(base, dtype=np.int64)
    social = uniform(seed, "in/social_care", p) < SOCIAL_CARE_RATE
    school = pop.school_age[:base] & (uniform(seed, "in/education", p) < EDUCATION_RATE)
    health = ~(social | school) | (uniform(seed, "in/health", p) >= HEALTH_GAP_IF_OTHER)
    for sector, mask in (("education", school), ("health", health), ("social_care", social)):
        enrol = np.full(total, -1, dtype=np.int16)
        enrol[:base][mask] = 0
        seq = np.full(total, -1, dtype=np.int32)
        seq[:base][mask] = np.arange(int(mask.sum()), dtype=np.int32)
        if mask.sum() > MAX_SEQ[sector]:
            raise ValueError(f"{sector}: more records than its local id space holds")
        end = np.full(total, -1, dtype=np.int16)
        closed = mask & (uniform(seed, f"closed/{sector}", p) < CLOSED_RATE[sector])
        end[:base][closed] = 0
        pop.enrol[sector], pop.seq[sector], pop.end[sector] = enrol, seq, end
        pop.fixed[sector] = np.zeros(total, dtype=bool)


def _enrol(pop: Population, sector: str, ids: np.ndarray, night: int) -> None:
    if len(ids) == 0:
        return
    next_seq = int(pop.seq[sector].max()) + 1
    pop.enrol[sector][ids] = night
    pop.seq[sector][ids] = next_seq + np.arange(len(ids), dtype=np.int32)
    if int(pop.seq[sector][ids].max()) >= MAX_SEQ[sector]:
        raise ValueError(f"{sector}: more records than its local id space holds")


def typo_flags(pop: Population, sector: str, p: np.ndarray) -> np.ndarray:
    """Records that carry a name typo (before any nightly correction)."""
    return uniform(pop.seed, f"typo/{sector}", p) < pop.noise.typo


def _evolve(pop: Population, j: int) -> None:
    """Apply night j's events and record which rows each sector re-sends tonight."""
    seed, n0, n1 = pop.seed, int(pop.bounds[j - 1]), int(pop.bounds[j])
    existing = np.arange(n0, dtype=np.int64)
    new: dict[str, list[np.ndarray]] = {a: [] for a in SECTORS}
    births = np.arange(n0, n1, dtype=np.int64)
    _enrol(pop, "health", births, j)
    new["health"].append(births)

    sc = select(pop.enrol["social_care"][:n0] < 0, uniform(seed, f"sc_new/{j}", existing), SOCIAL_CARE_NEW_RATE)
    new["social_care"].append(np.flatnonzero(sc))
    edu = select(
        (pop.enrol["education"][:n0] < 0) & pop.school_age[:n0], uniform(seed, f"admit/{j}", existing), ADMISSION_RATE
    )
    new["education"].append(np.flatnonzero(edu))
    for sector in ("social_care", "education"):
        _enrol(pop, sector, new[sector][-1], j)

    assert pop.moves is not None
    version = pop.moves.moves_by(pop.household[:n0], j).astype(np.int16)
    movers = np.flatnonzero(version != pop.addr_ver[:n0])
    pop.addr_ver[:n0] = version
    pop.addr_ver[n0:n1] = pop.moves.moves_by(pop.household[n0:n1], j)

    for sector in SECTORS:
        enrol, end, fixed = pop.enrol[sector], pop.end[sector], pop.fixed[sector]
        was_open = (enrol[:n0] >= 0) & (enrol[:n0] < j) & (end[:n0] < 0)
        leave = select(was_open, uniform(seed, f"leave/{sector}/{j}", existing), LEAVE_RATE[sector])
        end[:n0][leave] = j
        outstanding = (enrol[:n0] >= 0) & typo_flags(pop, sector, existing) & ~fixed[:n0]
        fix = select(outstanding, uniform(seed, f"fix/{sector}/{j}", existing), CORRECTION_RATE)
        fixed[:n0][fix] = True
        moved = movers[was_open[movers]]
        pop.sent[sector] = np.unique(
            np.concatenate(new[sector] + [moved, np.flatnonzero(leave), np.flatnonzero(fix)]).astype(np.int64)
        )


@dataclass
class Identity:
    """True (noise-free) identity of a chunk of children."""

    person_id: np.ndarray
    household: np.ndarray
    twin: np.ndarray
    sex: np.ndarray  # int8: 0 M, 1 F, 2 U
    name_list: np.ndarray  # int8: which given-name list (0 male, 1 female)
    given: np.ndarray  # int32 code into names.GIVEN_TABLE
    surname: np.ndarray  # int32 code into names.SURNAME_TABLE
    dob: np.ndarray  # int32 epoch days
    nhs: np.ndarray  # int64, 0 = none
    upn_body: np.ndarray  # int64 12-digit body, -1 = none
    upn_check: np.ndarray  # int8 index into the check-letter table


def _given(seed: int, p: np.ndarray, sex: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    name_list = np.where(sex == 2, integers(seed, "name_list", p, 2), sex).astype(np.int8)
    sizes = np.array([len(T.GIVEN_BY_SEX[0]), len(T.GIVEN_BY_SEX[1])])
    idx = integers(seed, "given", p, sizes[name_list])
    codes = np.where(
        name_list == 0,
        T.GIVEN_BY_SEX[0][np.minimum(idx, sizes[0] - 1)],
        T.GIVEN_BY_SEX[1][np.minimum(idx, sizes[1] - 1)],
    )
    return name_list, idx, codes


def _sex(seed: int, p: np.ndarray) -> np.ndarray:
    u = uniform(seed, "sex", p)
    return np.where(u < 0.003, 2, np.where(u < 0.5015, 0, 1)).astype(np.int8)


def surname_codes(seed: int, stream: str, keys: np.ndarray) -> np.ndarray:
    u = uniform(seed, stream, keys)
    idx = np.searchsorted(T.SURNAME_CUMWEIGHTS, u, side="right")
    return np.minimum(idx, len(T.SURNAMES) - 1).astype(np.int32)


def identity(pop: Population, p: np.ndarray) -> Identity:
    """The true identity of children ``p`` (any int array of person ids)."""
    seed = pop.seed
    p = np.asarray(p, dtype=np.int64)
    hh, twin = households(pop, p)
    birth, _ = births(pop, p)
    sex = _sex(seed, p)
    name_list, idx, given = _given(seed, p, sex)
    # A twin's given name differs from their co-twin's.
    follower = twin & (birth != p)
    if follower.any():
        lead = birth[follower]
        _, _, lead_given = _given(seed, lead, _sex(seed, lead))
        clash = np.flatnonzero(follower)[lead_given == given[follower]]
        lists = name_list[clash]
        bumped = idx[clash] + 1
        given[clash] = np.where(
            lists == 0,
            T.GIVEN_BY_SEX[0][bumped % len(T.GIVEN_BY_SEX[0])],
            T.GIVEN_BY_SEX[1][bumped % len(T.GIVEN_BY_SEX[1])],
        )
    nhs = np.zeros(len(p), dtype=np.int64)
    has_nhs = p < pop.nhs_capacity
    nhs[has_nhs] = pop.nhs_pool[p[has_nhs]]
    return Identity(
        person_id=p,
        household=hh,
        twin=twin,
        sex=sex,
        name_list=name_list,
        given=given.astype(np.int32),
        surname=surname_codes(seed, "surname", hh),
        dob=pop.dob[p],
        nhs=nhs,
        **_upn(pop, p),
    )


def _upn(pop: Population, p: np.ndarray) -> dict[str, np.ndarray]:
    offset = int(hash64(pop.seed, "upn_offset", [0])[0] % np.uint64(UPN_SPACE))
    q = (p * UPN_MULT + offset) % UPN_SPACE
    serial, q = q % 1000, q // 1000
    establishment, la = 2000 + q % 6000, T.LA_CODES[q // 6000]
    birth_year = pop.dob[p].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
    year = np.minimum(birth_year + 1970 + 5, pop.first_night.year) % 100
    body = la * 10**9 + establishment * 10**5 + year * 1000 + serial
    school = pop.school_age[p]
    return {
        "upn_body": np.where(school, body, -1),
        "upn_check": np.where(school, upn_check_indices(body), 0).astype(np.int8),
    }


def local_numbers(pop: Population, sector: str, p: np.ndarray, slot: np.ndarray | int = 0) -> np.ndarray:
    """The numeric local id of children ``p``'s record in the sector (must be enrolled):
    ``slot`` is the registration (a new record after each cross-authority move) or
    DUPLICATE_SLOT. Unique within the sector, so within every organisation of it."""
    space = LOCAL_ID_SPACE[sector]
    offset = int(hash64(pop.seed, f"localid/{sector}", [0])[0] % np.uint64(space))
    seq = pop.seq[sector][p].astype(np.int64) * REG_SLOTS + np.minimum(np.asarray(slot, dtype=np.int64), REG_SLOTS - 1)
    return LOCAL_ID_OFFSET[sector] + (seq * LOCAL_ID_MULT[sector] + offset) % space
