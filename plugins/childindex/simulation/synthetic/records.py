"""One organisation's rows for a chunk of children: true identity + the sector's noise, as
strings in the layout of the organisation's contract.

Columns are built as pyarrow string arrays (null = blank field) from integer codes and
counter-based draws; nothing here loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from childindex.contracts.contract import Contract, load_contract
from childindex.simulation.england import postcode_in_area
from childindex.simulation.rand import integers, pair_keys, uniform
from childindex.simulation.synthetic import names as T
from childindex.simulation.synthetic.areas import World
from childindex.simulation.synthetic.noise import (
    OCR_RULES,
    PHONETIC_RULES,
    NoiseConfig,
    blank,
    missing,
    rewrite_strings,
    swap_day_month,
    swap_postcodes,
    typo_dates,
    typo_strings,
)
from childindex.simulation.synthetic.population import (
    DUPLICATE_SLOT,
    Population,
    age_years,
    identity,
    local_numbers,
    surname_codes,
    typo_flags,
)
from childindex.validation.identifiers import UPN_CHECK_LETTERS
from childindex.whitelist import SECTORS

# Non-whitelisted columns each extract type also carries (the pipeline must drop them):
# (contract field they follow, or None for the end of the row, column name, what it holds).
EXTRAS: dict[str, tuple[tuple[str | None, str, str], ...]] = {
    "health_chis": (("sex", "AddressLine1", "line"), ("postcode", "Ethnicity", "ethnicity"),
                    (None, "GPPracticeCode", "gp")),
    "health_epr": (("postcode", "address", "full_address"), ("sex", "ethnic_category", "ethnicity"),
                   (None, "registered_gp", "gp")),
    "education_mis": (("sex", "AddressLine1", "line"), ("service", "SENStatus", "sen"),
                      ("service", "FSMEligible", "fsm")),
    "social_care_cms": (("sex", "ADDRESS", "full_address"), ("service", "REFERRAL_REASON", "referral"),
                        ("service", "ALLOCATED_WORKER", "worker")),
    "social_care_ehm": (("postcode", "AddressLine1", "line"), ("service", "PrimaryNeed", "referral"),
                        (None, "KeyWorker", "worker")),
}  # fmt: skip
SERVICE_WEIGHTS = {
    "education": {"school": 0.97, "alternative_provision": 0.02, "elective_home_education": 0.01},
    "social_care": {"early_help": 0.40, "child_in_need": 0.35, "child_protection": 0.12, "looked_after": 0.13},
}
DOB_TYPO_YEARS = 25  # a mistyped date of birth is never earlier than this many years before the night
COMMUNITY_PAEDIATRICS_RATE = 0.05
SENSITIVE_RATE = 0.01  # involvements an sector flags sensitive (where its contract has the flag)
LOCAL_MOVE_DISTRICT = 0.5  # of moves that stay in the postcode district
LOCAL_MOVE_AREA = 0.8  # ... or at least in the postcode area
FLAT_RATE = 0.05  # address lines "Flat 3, 12 Kings Road": a comma, so the CSV quotes them
# Local ids as each extract type writes them: a prefix and zero-padded digits ("" and 0: a bare integer).
LOCAL_ID_FORMAT = {
    "health_chis": ("H", 8),
    "health_epr": ("RX", 9),
    "education_mis": ("P", 8),
    "social_care_cms": ("", 0),
    "social_care_ehm": ("CR", 8),
}
_UPN_LETTERS = pa.array(list(UPN_CHECK_LETTERS), pa.string())


@cache
def column_layout(contract_name: str) -> tuple[str, ...]:
    """Header of an extract type's file: contract columns in order, extras interleaved."""
    contract = load_contract(contract_name)
    out: list[str] = []
    for col in contract.columns:
        out.append(col.name)
        out.extend(name for after, name, _ in EXTRAS[contract_name] if after == col.field)
    out.extend(name for after, name, _ in EXTRAS[contract_name] if after is None)
    return tuple(out)


@dataclass
class Chunk:
    columns: dict[str, pa.Array]  # header name -> string array, in layout order
    local_id: pa.Array
    person_id: np.ndarray
    twin: np.ndarray
    household: np.ndarray  # person id of the household's first child (twins, siblings)


def _ints(values: np.ndarray, mask: np.ndarray | None = None, width: int = 0) -> pa.Array:
    arr = pa.array(np.asarray(values, dtype=np.int64), mask=mask).cast(pa.string())
    return pc.utf8_lpad(arr, width=width, padding="0") if width else arr


def _join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _dates(days: np.ndarray, fmt: str, mask: np.ndarray | None = None) -> pa.Array:
    """Dates formatted with ``fmt``: each distinct day once (a few thousand), then a take."""
    distinct, index = np.unique(np.asarray(days, dtype=np.int32), return_inverse=True)
    table = pc.strftime(pa.array(distinct, pa.int32()).cast(pa.date32()), format=fmt)
    return table.take(pa.array(index.ravel(), mask=mask))


def _choose(u: np.ndarray, weights: dict[str, float], services: tuple[str, ...]) -> np.ndarray:
    cum = np.cumsum(list(weights.values()))
    pick = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)
    lookup = np.array([services.index(s) for s in weights], dtype=np.int64)
    return lookup[pick]


def local_id_strings(contract_name: str, numbers: np.ndarray) -> pa.Array:
    prefix, width = LOCAL_ID_FORMAT[contract_name]
    digits = _ints(numbers, width=width)
    return _join(prefix, digits) if prefix else digits


def address(
    seed: int,
    household: np.ndarray,
    version: np.ndarray,
    area: np.ndarray | None = None,
    world: World | None = None,
) -> dict[str, pa.Array]:
    """Address line, postcode and town of each (household, address version), in ``world``'s
    authority ``area`` (an index into ``world.areas``): a postcode district of that area."""
    version = np.asarray(version, dtype=np.int64)
    key = pair_keys(household, version + 1)
    # Most moves are local: after a move, half of households stay in their postcode
    # district and another 30% in their postcode area (the first address's).
    first = pair_keys(household, np.ones_like(version))
    local = np.where(version != 0, uniform(seed, "move/local", key), 1.0)  # -1: the address before
    place = integers(seed, "pc/area", np.where(local < LOCAL_MOVE_AREA, first, key), len(T.POSTCODE_AREAS))
    district = integers(seed, "pc/district", np.where(local < LOCAL_MOVE_DISTRICT, first, key), 30)
    outward = _join(T.AREA_TABLE.take(place), _ints(1 + district))
    town = T.TOWN_TABLE.take(place)
    if world is not None and area is not None:
        # The district of the authority area the household lives in (same district as the
        # first address for half of moves within the area).
        counts = np.array([len(a.districts) for a in world.areas], dtype=np.int64)[area]
        has = counts > 0
        if has.any():
            keyed = np.where(local < LOCAL_MOVE_DISTRICT, first, key)
            chosen = postcode_in_area(seed, keyed[has], np.asarray(area)[has], world.areas)
            index = np.arange(len(version), dtype=np.int64)
            index[has] = len(version) + np.arange(int(has.sum()))
            outward = pa.concat_arrays([outward, pa.array(chosen.astype(object), pa.string())]).take(pa.array(index))
            names = pa.array([a.name for a in world.areas], pa.string())
            town = pc.if_else(pa.array(has), names.take(pa.array(np.where(has, area, 0))), town)
    postcode = _join(
        outward,
        " ",
        _ints(integers(seed, "pc/digit", key, 10)),
        T.INWARD_LETTERS.take(integers(seed, "pc/l1", key, 20)),
        T.INWARD_LETTERS.take(integers(seed, "pc/l2", key, 20)),
    )
    street = _join(
        _ints(1 + integers(seed, "addr/house", key, 180)),
        T.STREET_STEMS.take(integers(seed, "addr/stem", key, len(T.STREET_STEMS))),
        T.STREET_SUFFIXES.take(integers(seed, "addr/suffix", key, len(T.STREET_SUFFIXES))),
        sep=" ",
    )
    flat = uniform(seed, "addr/flat", key) < FLAT_RATE
    flat_line = _join("Flat ", _ints(1 + integers(seed, "addr/flatno", key, 12)), ", ", street)
    return {
        "line": pc.if_else(pa.array(flat), flat_line, street),
        "postcode": postcode,
        "town": town,
    }


NOT_CLOSED = np.int64(-(10**9))  # closed_at of a record no move closed (real nights are > -HISTORY_NIGHTS)


@dataclass(frozen=True)
class Records:
    """Which records of a sector's children a file carries: child, registration (0, then one
    more after each cross-authority move while involved), the night a registration was
    closed by a move (``NOT_CLOSED``: not closed by one; a move before the first night has a
    negative night), the area (index into ``pop.world.areas``) and
    whether the row is a duplicate registration."""

    p: np.ndarray
    registration: np.ndarray
    closed_at: np.ndarray
    area: np.ndarray
    duplicate: np.ndarray

    def take(self, index: np.ndarray) -> Records:
        return Records(*(getattr(self, f)[index] for f in ("p", "registration", "closed_at", "area", "duplicate")))


def current_records(pop: Population, sector: str, p: np.ndarray) -> Records:
    """Each child's current record in the sector (registration after every crossing so far)."""
    p = np.asarray(p, dtype=np.int64)
    c0, current, _start = _crossings(pop, sector, p)
    return _current(pop, p, c0, current)


def _current(pop: Population, p: np.ndarray, c0: np.ndarray, current: np.ndarray) -> Records:
    zeros = np.zeros(len(p), dtype=np.int64)
    return Records(p, current, zeros + NOT_CLOSED, _area(pop, p, c0 + current), zeros.astype(bool))


def _crossings(pop: Population, sector: str, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crossings before the involvement began, crossings while involved up to tonight, start day)."""
    assert pop.moves is not None
    start, end, ended = _involvement(pop, sector, p, pop.dob[p])
    hh = pop.household[p]
    c0 = pop.moves.crossings_by(hh, start - pop.first_day)
    until = np.where(ended, np.minimum(end - pop.first_day, pop.night), pop.night)
    current = np.maximum(pop.moves.crossings_by(hh, until) - c0, 0)
    return c0, current, start


def _area(pop: Population, p: np.ndarray, crossings: np.ndarray) -> np.ndarray:
    if pop.world is None or pop.moves is None:
        return np.zeros(len(p), dtype=np.int64)
    hh = pop.household[p]
    return pop.moves.area_after(hh, crossings, pop.world.home_areas(pop.seed, hh))


def records_since(pop: Population, sector: str, after: int) -> Records:
    """The sector's rows for tonight's file: every child in ``pop.sent[sector]`` (their
    current record), each record a cross-authority move closed in (``after``, tonight] (the
    old area's organisation sends it, ended), and duplicate registrations made tonight."""
    assert pop.moves is not None
    p = pop.sent[sector]
    c0, current, _start = _crossings(pop, sector, p)
    now = _current(pop, p, c0, current)  # the crossings just counted, not counted again
    # Earlier registrations: registration i closed on the night of crossing c0 + i + 1.
    old_p = np.repeat(p, current)
    first = np.repeat(np.cumsum(current) - current, current)
    i = np.arange(len(old_p), dtype=np.int64) - first
    k = np.repeat(c0, current) + i
    closed = pop.moves.cross_night(pop.household[old_p], k + 1) if len(old_p) else np.zeros(0, np.int64)
    keep = closed > after
    old_p, i, k, closed = old_p[keep], i[keep], k[keep], closed[keep]
    old = Records(old_p, i, closed, _area(pop, old_p, k), np.zeros(len(old_p), dtype=bool))
    # Duplicates: a second registration of a few children when their record is first made.
    new = (pop.enrol[sector][p] > after) | (pop.enrol[sector][p] == 0) & (after < 0)
    dup = new & (uniform(pop.seed, f"duplicate/{sector}", p) < pop.noise.duplicate(sector))
    dups = now.take(np.flatnonzero(dup))
    dups = Records(dups.p, dups.registration, dups.closed_at, dups.area, np.ones(len(dups.p), dtype=bool))
    return _concat(now, old, dups)


def _concat(*parts: Records) -> Records:
    return Records(*(np.concatenate([getattr(r, f) for r in parts]) for f in ("p", "registration", "closed_at",
                                                                               "area", "duplicate")))  # fmt: skip


def build_chunk(pop: Population, organisation: str, contract_name: str, rec: Records) -> Chunk:
    """Rows of ``organisation`` (sending ``contract_name``) for records ``rec`` of children
    enrolled in its sector, ready to serialise. Noise is keyed on the child and the
    registration, so a re-sent record keeps its noise, and a child's records in two areas
    were keyed in separately (their typos and nicknames differ)."""
    contract: Contract = load_contract(contract_name)
    sector = contract.sector  # noise streams and enrolment are per sector
    seed, noise = pop.seed, pop.noise
    p = rec.p
    who = identity(pop, p)
    hh = who.household
    slot = np.where(rec.duplicate, DUPLICATE_SLOT, rec.registration)
    key = p + (slot.astype(np.int64) << 40)  # noise key: registration 0 keys on the child alone
    f: dict[str, pa.Array] = {}  # contract field -> values
    f["local_id"] = local_id_strings(contract_name, local_numbers(pop, sector, p, slot))

    # Identifiers, with sector-specific gaps (a duplicate registration often lacks the NHS number).
    no_nhs = (who.nhs == 0) | (uniform(seed, f"no_nhs/{sector}", key) < noise.missing_nhs(sector))
    no_nhs |= rec.duplicate & (uniform(seed, f"dup_no_nhs/{sector}", p) < 0.5)
    f["nhs_number"] = _ints(who.nhs, mask=no_nhs)
    no_upn = (who.upn_body < 0) | (uniform(seed, f"no_upn/{sector}", key) < noise.missing_upn(sector))
    f["upn"] = _join(_UPN_LETTERS.take(who.upn_check), _ints(who.upn_body, mask=no_upn))

    # Given name: nickname swap (on codes), then typo.
    partner = np.where(who.name_list == 0, T.NICKNAME_BY_SEX[0][who.given], T.NICKNAME_BY_SEX[1][who.given])
    nick_rate = noise.nickname / max(T.NICKNAME_ELIGIBLE_SHARE, 1e-9)
    nick = (partner >= 0) & (uniform(seed, f"nickname/{sector}", key) < nick_rate)
    given = T.GIVEN_TABLE.take(np.where(nick, partner, who.given))

    # Family name: hyphenated or changed after a family change (same for a household).
    changed = uniform(seed, f"surname_change/{sector}", hh) < noise.surname_change
    hyphen = changed & (uniform(seed, f"surname_kind/{sector}", hh) < 0.5)
    other = surname_codes(seed, f"surname_other/{sector}", hh)
    if noise.surname_change_record > 0:  # ... or in this record only (harsh profile)
        mine = ~changed & (uniform(seed, f"surname_change_record/{sector}", key) < noise.surname_change_record)
        changed = changed | mine
        hyphen = np.where(mine, uniform(seed, f"surname_kind_record/{sector}", key) < 0.5, hyphen)
        other = np.where(mine, surname_codes(seed, f"surname_other_record/{sector}", key), other)
    other = np.where(other == who.surname, (other + 1) % len(T.SURNAMES), other)
    own_s, other_s = T.SURNAME_TABLE.take(who.surname), T.SURNAME_TABLE.take(other)
    family = pc.if_else(pa.array(hyphen), _join(own_s, other_s, sep="-"), pc.if_else(pa.array(changed), other_s, own_s))

    # Phonetic and OCR misspellings of one of the names (harsh profile).
    given, family = _misspell(noise.phonetic, "phonetic", PHONETIC_RULES, given, family, seed, sector, key)
    given, family = _misspell(noise.ocr, "ocr", OCR_RULES, given, family, seed, sector, key)

    # A typo, until a nightly correction fixes the current record's.
    typo = typo_flags(pop, sector, key) & ~(pop.fixed[sector][p] & (slot == rec.registration))
    in_given = uniform(seed, f"typo_field/{sector}", key) < 0.5
    given = _typo(given, typo & in_given, seed, sector, key, noise.typo_second)
    family = _typo(family, typo & ~in_given, seed, sector, key, noise.typo_second)
    if noise.transposed > 0:  # family name in the given name's field and the other way round
        swapped = pa.array(uniform(seed, f"transposed/{sector}", key) < noise.transposed)
        given, family = pc.if_else(swapped, family, given), pc.if_else(swapped, given, family)
    f["given_name"] = blank(given, noise.missing_given, seed, f"missing_given/{sector}", key)
    f["family_name"] = family

    latest = pop.first_day + pop.night - 1
    swap = uniform(seed, f"dob_swap/{sector}", key) < noise.dob_swap
    dob, _ = swap_day_month(who.dob, swap, latest=latest)
    if noise.dob_typo > 0:  # one digit of the day, month or year (harsh profile)
        mistyped = uniform(seed, f"dob_typo/{sector}", key) < noise.dob_typo
        earliest = latest - round(DOB_TYPO_YEARS * 365.25)
        u_part, u_pick = uniform(seed, f"dob_typo_part/{sector}", key), uniform(seed, f"dob_typo_pick/{sector}", key)
        dob, _ = typo_dates(dob, mistyped, u_part, u_pick, earliest, latest)
    no_dob = missing(noise.missing_dob, seed, f"missing_dob/{sector}", key)
    f["date_of_birth"] = _dates(dob, contract.date_format, mask=no_dob)
    sex = _sex_codes(contract, seed, sector, key, who.sex)
    f["sex"] = blank(sex, noise.missing_sex, seed, f"missing_sex/{sector}", key)

    # Address: the current one (the one before the move, for a record a move closed), or
    # the previous one in the one sector whose record missed a move.
    closed = rec.closed_at != NOT_CLOSED
    assert pop.moves is not None
    version = np.where(closed, pop.moves.moves_by(hh, rec.closed_at - 1), pop.addr_ver[p]).astype(np.int64)
    enrolled = np.stack([pop.enrol[a][p] >= 0 for a in SECTORS])
    n_in = enrolled.sum(axis=0)
    rank = enrolled[: SECTORS.index(sector)].sum(axis=0)
    stale = (uniform(seed, "stale_address", hh) < noise.house_move) & (n_in >= 2)
    stale &= (integers(seed, "stale_pick", hh, np.maximum(n_in, 1)) == rank) & (version == 0)
    addr = address(seed, hh, np.where(stale, -1, version), rec.area, pop.world)
    f["postcode"] = blank(_postcode_slips(addr["postcode"], noise, seed, sector, key), noise.missing_postcode,
                           seed, f"missing_postcode/{sector}", key)  # fmt: skip

    service = _services(pop, contract, sector, p, who.dob)
    f["service"] = pa.array(contract.services, pa.string()).take(service)
    f["contact_route"] = _contacts(contract, seed, organisation, key, service)
    if contract.sensitive_codes:
        # A few involvements are flagged sensitive (a refuge, a sexual health service).
        yes = next(c for c, v in contract.sensitive_codes.items() if v)
        no = next(c for c, v in contract.sensitive_codes.items() if not v)
        flagged = uniform(seed, f"sensitive/{sector}", key) < SENSITIVE_RATE
        f["sensitive"] = pa.array(np.where(flagged, yes, no), pa.string())
    start, end, ended = _involvement(pop, sector, p, who.dob)
    # A later registration starts on the night of the move that made it; a record a move
    # closed ends that night.
    if rec.registration.any() or closed.any():
        c0 = pop.moves.crossings_by(hh, start - pop.first_day)
        k = c0 + rec.registration
        moved_in = pop.first_day + pop.moves.cross_night(hh, np.maximum(k, 1))
        start = np.where(rec.registration > 0, moved_in, start)
        end = np.where(closed, pop.first_day + rec.closed_at, end)
        ended = ended | closed
        start = np.minimum(start, end)
    f["involvement_start"] = _dates(start, contract.date_format)
    f["involvement_end"] = _dates(end, contract.date_format, mask=~ended)

    extras = _extras(contract_name, seed, p, hh, addr)
    columns: dict[str, pa.Array] = {}
    by_name = {c.name: c.field for c in contract.columns}
    for name in column_layout(contract_name):
        columns[name] = f[by_name[name]] if name in by_name else extras[name]
    return Chunk(columns=columns, local_id=f["local_id"], person_id=p, twin=who.twin, household=who.household)


def _typo(values: pa.Array, mask: np.ndarray, seed: int, sector: str, p: np.ndarray, second: float = 0.0) -> pa.Array:
    """One typo in each masked value; a share ``second`` of them get a second edit."""
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return values
    key = p[rows]
    subset = values.take(pa.array(rows)).to_numpy(zero_copy_only=False).astype(str)
    edited = typo_strings(
        subset,
        uniform(seed, f"typo_kind/{sector}", key),
        uniform(seed, f"typo_pos/{sector}", key),
        uniform(seed, f"typo_char/{sector}", key),
    )
    if second > 0:
        again = np.flatnonzero(uniform(seed, f"typo_second/{sector}", key) < second)
        if len(again):
            k2 = key[again]
            edited[again] = typo_strings(
                edited[again],
                uniform(seed, f"typo_kind2/{sector}", k2),
                uniform(seed, f"typo_pos2/{sector}", k2),
                uniform(seed, f"typo_char2/{sector}", k2),
            )
    return _patch(values, rows, pa.array(edited, pa.string()))


def _patch(values: pa.Array, rows: np.ndarray, edited: pa.Array) -> pa.Array:
    """``values`` with ``values[rows[i]]`` replaced by ``edited[i]`` (a take, no row loop)."""
    if len(rows) == 0:
        return values
    index = np.arange(len(values), dtype=np.int64)
    index[rows] = len(values) + np.arange(len(rows))  # point edited rows at the edits
    return pa.concat_arrays([values, edited]).take(pa.array(index))


def _misspell(
    rate: float,
    kind: str,
    rules: tuple[tuple[str, str], ...],
    given: pa.Array,
    family: pa.Array,
    seed: int,
    sector: str,
    key: np.ndarray,
) -> tuple[pa.Array, pa.Array]:
    """A share ``rate`` of records get one name rewritten by one of ``rules``: the given or
    the family name (a keyed draw; the other one when no rule matches the drawn one)."""
    if rate <= 0:
        return given, family
    rows = np.flatnonzero(uniform(seed, f"{kind}/{sector}", key) < rate)
    if len(rows) == 0:
        return given, family
    k = key[rows]
    u_rule = uniform(seed, f"{kind}_rule/{sector}", k)
    take = pa.array(rows)
    new_given, ok_given = rewrite_strings(given.take(take), rules, u_rule)
    new_family, ok_family = rewrite_strings(family.take(take), rules, u_rule)
    in_given = uniform(seed, f"{kind}_field/{sector}", k) < 0.5
    use_given = ok_given & (in_given | ~ok_family)
    use_family = ok_family & ~use_given
    given = _patch(given, rows[use_given], new_given.filter(pa.array(use_given)))
    family = _patch(family, rows[use_family], new_family.filter(pa.array(use_family)))
    return given, family


def _postcode_slips(postcodes: pa.Array, noise: NoiseConfig, seed: int, sector: str, key: np.ndarray) -> pa.Array:
    """A share ``noise.postcode_swap`` of postcodes with a slip (:func:`.noise.swap_postcodes`)."""
    if noise.postcode_swap <= 0:
        return postcodes
    rows = np.flatnonzero(uniform(seed, f"postcode_swap/{sector}", key) < noise.postcode_swap)
    if len(rows) == 0:
        return postcodes
    k = key[rows]
    subset = postcodes.take(pa.array(rows)).to_numpy(zero_copy_only=False).astype(str)
    slipped = swap_postcodes(
        subset, uniform(seed, f"postcode_swap_kind/{sector}", k), uniform(seed, f"postcode_swap_digit/{sector}", k)
    )
    return _patch(postcodes, rows, pa.array(slipped, pa.string()))


def _sex_codes(contract: Contract, seed: int, sector: str, p: np.ndarray, sex: np.ndarray) -> pa.Array:
    codes = list(contract.sex_codes)
    by_sex = [[i for i, c in enumerate(codes) if contract.sex_codes[c] == s] for s in "MFU"]
    if not by_sex[2]:  # no code for "not known": the system records M or F
        by_sex[2] = by_sex[0] + by_sex[1]
    width = max(len(b) for b in by_sex)
    table = np.array([[b[i % len(b)] for i in range(width)] for b in by_sex], dtype=np.int64)
    choice = integers(seed, f"sex_code/{sector}", p, np.array([len(b) for b in by_sex])[sex])
    return pa.array(codes, pa.string()).take(table[sex, choice])


def _services(pop: Population, contract: Contract, sector: str, p: np.ndarray, dob: np.ndarray) -> np.ndarray:
    services, u = contract.services, uniform(pop.seed, f"service/{sector}", p)
    if sector != "health":
        return _choose(u, SERVICE_WEIGHTS[sector], services)
    young = age_years(dob, pop.first_night) < 5
    out = np.where(young, services.index("health_visiting"), services.index("school_nursing"))
    paeds = (u < COMMUNITY_PAEDIATRICS_RATE) & (pop.enrol[sector][p] == 0)  # births go to HV
    return np.where(paeds, services.index("community_paediatrics"), out)


@cache
def _team_table(organisation: str, contract_name: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    services = load_contract(contract_name).services
    teams = T.team_contacts(organisation, services)
    sizes = np.array([len(teams[s]) for s in services], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return pa.concat_arrays([teams[s] for s in services]), offsets, sizes


def _contacts(contract: Contract, seed: int, organisation: str, p: np.ndarray, service: np.ndarray) -> pa.Array:
    table, offsets, sizes = _team_table(organisation, contract.name)
    return table.take(offsets[service] + integers(seed, f"team/{contract.sector}", p, sizes[service]))


def _involvement(pop: Population, sector: str, p: np.ndarray, dob: np.ndarray):
    """(start days, end days, ended mask) of each child's involvement with the sector."""
    seed, first = pop.seed, pop.first_day
    dob = dob.astype(np.int64)
    if sector == "education":
        earliest = np.minimum(dob + 1461, first - 1)
    elif sector == "social_care":
        earliest = np.maximum(dob, first - 1095)
    else:
        earliest = dob
    earliest = np.minimum(earliest, first - 1)
    span = np.maximum(first - earliest, 1)
    base_start = earliest + integers(seed, f"start/{sector}", p, span)
    enrol = pop.enrol[sector][p].astype(np.int64)
    start = np.where(enrol > 0, first + enrol, base_start)
    end_night = pop.end[sector][p].astype(np.int64)
    closed_span = np.maximum(first - start, 1)
    earlier_end = start + integers(seed, f"end/{sector}", p, closed_span)
    end = np.where(end_night > 0, first + end_night, earlier_end)
    return start, end, end_night >= 0


def _extras(
    contract_name: str, seed: int, p: np.ndarray, hh: np.ndarray, addr: dict[str, pa.Array]
) -> dict[str, pa.Array]:
    """The extract type's non-whitelisted columns (each kind computed only when carried)."""
    kinds = {name: kind for _after, name, kind in EXTRAS[contract_name]}
    out: dict[str, pa.Array] = {}
    for name, kind in kinds.items():
        out[name] = _extra(kind, seed, p, hh, addr)
    return out


def _extra(kind: str, seed: int, p: np.ndarray, hh: np.ndarray, addr: dict[str, pa.Array]) -> pa.Array:
    if kind == "line":
        return addr["line"]
    if kind == "full_address":
        return _join(addr["line"], addr["town"], sep=", ")
    if kind == "ethnicity":
        eth = np.searchsorted(T.ETHNICITY_CUMWEIGHTS, uniform(seed, "ethnicity", hh), "right")
        return T.ETHNICITY_CODES.take(np.minimum(eth, len(T.ETHNICITY_CODES) - 1))
    if kind == "gp":
        return _join(
            T.GP_PREFIXES.take(integers(seed, "gp/prefix", hh, len(T.GP_PREFIXES))),
            _ints(integers(seed, "gp/number", hh, 100_000), width=5),
        )
    if kind == "sen":
        u = uniform(seed, "sen", p)
        return T.SEN_CODES.take(np.where(u < 0.85, 0, np.where(u < 0.97, 1, 2)))
    if kind == "fsm":
        return pa.array(np.where(uniform(seed, "fsm", hh) < 0.24, "Y", "N"), pa.string())
    if kind == "referral":
        return T.REFERRAL_REASONS.take(integers(seed, "referral", p, len(T.REFERRAL_REASONS)))
    if kind == "worker":
        worker_list = integers(seed, "worker/list", p, 2)
        first = np.where(
            worker_list == 0,
            T.GIVEN_BY_SEX[0][integers(seed, "worker/given", p, len(T.GIVEN_BY_SEX[0]))],
            T.GIVEN_BY_SEX[1][integers(seed, "worker/given", p, len(T.GIVEN_BY_SEX[1]))],
        )
        return _join(T.GIVEN_TABLE.take(first), T.SURNAME_TABLE.take(surname_codes(seed, "worker/sn", p)), sep=" ")
    raise ValueError(f"unknown extra column kind {kind!r}")


def true_identity_frame(pop: Population, p: np.ndarray):
    """Noise-free identity of children ``p`` as a pandas DataFrame (for tests and evaluation).

    Columns: person_id, household, twin, given_name, nickname (the partner name or None),
    family_name, date_of_birth (datetime64[s]), sex (M/F/U), postcode and address (current),
    nhs_number, upn (None when the child has none).
    """
    import pandas as pd

    p = np.asarray(p, dtype=np.int64)
    who = identity(pop, p)
    partner = np.where(who.name_list == 0, T.NICKNAME_BY_SEX[0][who.given], T.NICKNAME_BY_SEX[1][who.given])
    # Where the household lives tonight, as the current records' addresses say.
    area = _area(pop, p, pop.moves.crossings_by(who.household, pop.night)) if pop.moves is not None else None
    addr = address(pop.seed, who.household, pop.addr_ver[p], area, pop.world)
    return pd.DataFrame(
        {
            "person_id": p,
            "household": who.household,
            "twin": who.twin,
            "given_name": T.GIVEN_TABLE.take(who.given).to_pandas(),
            "nickname": T.GIVEN_TABLE.take(pa.array(partner, mask=partner < 0)).to_pandas(),
            "family_name": T.SURNAME_TABLE.take(who.surname).to_pandas(),
            "date_of_birth": who.dob.astype("datetime64[D]").astype("datetime64[s]"),
            "sex": np.array(["M", "F", "U"])[who.sex],
            "postcode": addr["postcode"].to_pandas(),
            "address": addr["line"].to_pandas(),
            "nhs_number": _ints(who.nhs, mask=who.nhs == 0).to_pandas(),
            "upn": _join(_UPN_LETTERS.take(who.upn_check), _ints(who.upn_body, mask=who.upn_body < 0)).to_pandas(),
        }
    )
